"Running a model with one layer's output captured, and parsing targets: the machinery behind chapter 5's maps."
import numpy as np
import pytest, torch
import torch.nn as nn
from coursekit.capture import capture_layer, parse_targets
from coursekit.cam import grad_cam, mean_activation_map
from coursekit.hooks import count_hooks

def inplace_cnn():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(inplace=True), nn.Dropout(0.5), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(4, 3))

X = torch.randn(2, 3, 8, 8)

def test_the_capture_is_what_the_layer_computed_despite_inplace_ops_after_it():
    m = inplace_cnn()
    with torch.no_grad(): ref = m[0](X)
    acts, logits = capture_layer(m, X, m[0])
    assert torch.equal(acts, ref) and (acts < 0).any() and not acts.requires_grad
    with torch.no_grad(): assert torch.equal(logits, m.eval()(X))

def test_grad_starts_at_the_layer_and_the_model_comes_back():
    m = inplace_cnn(); m.train()
    with torch.no_grad():
        acts, logits = capture_layer(m, X, m[0], grad=True)
        assert not torch.is_grad_enabled()
    assert acts.is_leaf and acts.requires_grad and logits.grad_fn is not None
    g, = torch.autograd.grad(logits[:, 0].sum(), acts)
    assert g.shape == acts.shape and m[0].weight.grad is None
    assert all(x.training for x in m.modules()) and count_hooks(m) == 0

def test_inference_mode_inputs():
    m = inplace_cnn()
    with torch.inference_mode():
        acts, logits = capture_layer(m, X.clone(), m[0], grad=True)
        t = parse_targets([0, 1], logits)
    assert not acts.is_inference() and not t.is_inference()
    g, = torch.autograd.grad(logits[torch.arange(2), t].sum(), acts)
    assert g.shape == acts.shape

@pytest.mark.parametrize('targets,expected', [(None, 'argmax'), (2, [2, 2]), (np.int64(1), [1, 1]),
                                              (torch.tensor(0), [0, 0]), ([0, 2], [0, 2]), (np.array([2, 1]), [2, 1])])
def test_parse_targets_forms(targets, expected):
    logits = torch.tensor([[0.1, 2.0, 0.3], [1.5, 0.2, 0.0]])
    t = parse_targets(targets, logits)
    assert t.dtype == torch.long and t.tolist() == (logits.argmax(1).tolist() if expected == 'argmax' else expected)

@pytest.mark.parametrize('targets,exc,msg', [(True, TypeError, 'got a bool'), (1.5, TypeError, '1-D sequence of ints'),
                                             ('cat', TypeError, '1-D sequence of ints'), ([[0, 1]], TypeError, '1-D'),
                                             ([0, 1, 2], ValueError, 'targets has 3 entries but the batch has 2'),
                                             (3, ValueError, r'class indices in \[0, 2\]')])
def test_parse_targets_refuses(targets, exc, msg):
    with pytest.raises(exc, match=msg): parse_targets(targets, torch.zeros(2, 3))

def test_errors_name_the_function_the_user_called():
    m = inplace_cnn()
    with pytest.raises(ValueError, match="^grad_cam: layer 'conv' is not a module"): grad_cam(m, X, 'conv')
    with pytest.raises(ValueError, match='^mean_activation_map: the target layer must output feature maps'):
        mean_activation_map(m, X, m[5])
    with pytest.raises(ValueError, match='^grad_cam: targets has 1 entries'): grad_cam(m, X, m[0], targets=[1])
    with pytest.raises(ValueError, match='^capture_layer: the model must return class scores'):
        capture_layer(nn.Sequential(nn.Conv2d(3, 2, 3)), X, '0')
    assert count_hooks(m) == 0
