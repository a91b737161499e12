"On a CUDA GPU: training, statistics, Grad-CAM and the pretrained network give the CPU's answers. Skipped elsewhere."
import pytest, torch
from coursekit.cnn import train_cnn
from coursekit.stats import ActivationRecorder
from coursekit.cam import grad_cam
from coursekit.data import sample_image
from coursekit.imagenet import imagenet_classifier, imagenet_batch, imagenet_top
from coursekit.hooks import count_hooks

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU')]

@pytest.mark.parametrize('precision,channels_last', [('fp32', False), ('bf16', False), ('fp32', True), ('fp16', False)])
def test_train_cnn_on_the_gpu(precision, channels_last):
    flags = torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic
    st = ActivationRecorder()
    learn = train_cnn('mnist', epochs=2, lr=0.1, bs=512, device='cuda', precision=precision,
                      channels_last=channels_last, cbs=[st], progress=False)
    assert learn.epoch_history.history[-1]['valid_accuracy'] > 0.9
    assert next(learn.model.parameters()).is_cuda and st.stats.device.type == 'cpu' and count_hooks(learn.model) == 0
    assert (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic) == flags

def test_stats_match_the_cpu_for_the_same_run():
    a, b = ActivationRecorder(), ActivationRecorder()
    train_cnn('mnist', epochs=1, bs=256, device='cpu', cbs=[a], progress=False)
    train_cnn('mnist', epochs=1, bs=256, device='cuda', cbs=[b], progress=False)
    assert a.stats.shape == b.stats.shape
    assert torch.allclose(a.stats[:3, :, :2], b.stats[:3, :, :2], rtol=1e-2, atol=1e-3)  # first batches: same weights

def test_pretrained_network_and_grad_cam_on_the_gpu():
    m, x = imagenet_classifier(), imagenet_batch([sample_image('cat'), sample_image('coffee')])
    cpu = grad_cam(m, x, 'bn2')
    gpu = grad_cam(m.cuda(), x.cuda(), 'bn2')
    cat, coffee = [t[0][0] for t in imagenet_top(gpu.logits.cpu(), 1)]
    assert cat in ('tiger cat', 'Egyptian cat', 'tabby') and coffee in ('espresso', 'cup')
    assert torch.allclose(gpu.raw.cpu(), cpu.raw, atol=1e-3 * cpu.raw.abs().max().item())
