"""What a fastai user does with the Learner that `train_cnn` returns, on the default fast data path: show_batch,
test_dl + get_preds, predict, show_results, ClassificationInterpretation, export + load_learner, validate, lr_find,
a second fit and fine_tune; with and without ActivationRecorder."""
import matplotlib; matplotlib.use('Agg')
import matplotlib.pyplot as plt
import pytest, torch
from fastai.interpret import ClassificationInterpretation
from fastai.learner import load_learner
from coursekit.cnn import train_cnn
from coursekit.data import load_mnist
from coursekit.stats import ActivationRecorder

@pytest.fixture(scope='module', params=[False, True], ids=['plain', 'with_stats'])
def learn(request):
    return train_cnn('mnist', epochs=1, lr=0.01, bs=256, device='cpu', progress=False,
                     cbs=[ActivationRecorder()] if request.param else None)

def test_show_batch_and_show_results(learn):
    learn.dls.show_batch(max_n=6); plt.close('all')
    learn.show_results(max_n=6); plt.close('all')

def test_test_dl_get_preds_and_predict(learn):
    x_va = load_mnist()[2]
    preds, targs = learn.get_preds(dl=learn.dls.test_dl(x_va[:10]))
    assert preds.shape == (10, 10) and targs is None and torch.allclose(preds.sum(1), torch.ones(10))
    name, idx, probs = learn.predict(x_va[0])  # one uint8 image (28, 28)
    assert name == learn.dls.vocab[int(idx)] and probs.shape == (10,) and abs(float(probs.sum()) - 1) < 1e-5

def test_interpretation(learn):
    interp = ClassificationInterpretation.from_learner(learn)
    cm = interp.confusion_matrix()
    assert cm.shape == (10, 10) and cm.sum() == len(learn.dls.valid.dataset)
    interp.plot_confusion_matrix(); interp.plot_top_losses(4); plt.close('all')
    assert len(interp.most_confused(min_val=1)) > 0

def test_export_and_load(learn, tmp_path):
    learn.export(tmp_path/'model.pkl')
    loaded = load_learner(tmp_path/'model.pkl')
    x = load_mnist()[2][:3]
    assert loaded.predict(x[0])[0] == learn.predict(x[0])[0]
    assert len(loaded.dls.train) == 0  # the data stayed behind

def test_validate_second_fit_and_fine_tune():
    st = ActivationRecorder()
    learn = train_cnn('mnist', epochs=1, lr=0.01, bs=512, device='cpu', progress=False, cbs=[st])
    loss, acc = learn.validate()
    assert 0 < acc <= 1 and st.stats is not None
    with learn.no_bar(), learn.no_logging():
        learn.fit(1, 1e-3); learn.fine_tune(1, 1e-3)
        learn.lr_find(num_it=20, show_plot=False)
    assert learn.validate()[1] > 0.5
