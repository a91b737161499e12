"diagnose says what is wrong with an answer (or that it is right); grade_function runs a learner's function on cases."
import pytest, torch
from hypothesis import given, settings, strategies as st
from coursekit.exercises import diagnose, grade_function

A = torch.arange(9.).view(3, 3) ** 2  # no symmetry: each mistake below gives a different array

@pytest.mark.parametrize('got,words', [
    (A, 'a: correct!'),
    (A.double(), 'a: correct!'),
    (-A, 'the sign is flipped'),
    (A.T, 'transposed'),
    (A.flip(0), 'upside down'),
    (A.flip(1), 'mirrored left-right'),
    (A.flip(0, 1), 'rotated by 180 degrees'),
    (A.rot90(1), 'rotated by 90 degrees'),
    (A.rot90(-1), 'rotated by 90 degrees'),
    (3 * A, 'right pattern, but scaled by 3'),
    (torch.zeros(2, 3), 'a: wrong shape: expected (3, 3), got (2, 3)'),
    (A + torch.eye(3), 'wrong values at positions [(0, 0), (1, 1), (2, 2)]'),
])
def test_diagnose(got, words):
    msg = diagnose(got, A, 'a')
    assert msg.startswith('a: ') and words in msg, msg

def test_diagnose_lists_at_most_six_positions():
    msg = diagnose(torch.ones(4, 4), torch.arange(16.).view(4, 4))
    assert msg.endswith(' ...') and msg.count('(') == 6

def test_diagnose_other_shapes():
    assert diagnose(torch.tensor(2.), torch.tensor(4.), 'f(2)') == 'f(2): expected 4, got 2'
    assert diagnose(torch.tensor([1., 2]), torch.tensor([2., 1])).startswith('answer: wrong values')
    x = torch.arange(6.).view(2, 3)
    assert 'upside down' in diagnose(x.flip(0), x)  # not square: no transpose tried (it would not even fit)
    assert diagnose(torch.zeros(3), torch.zeros(3)) == 'answer: correct!'

@pytest.mark.parametrize('got,expected,msg', [([[1, 2]], A, 'got must be a torch.Tensor'),
                                             (A, None, 'expected must be a torch.Tensor')])
def test_diagnose_refuses_non_tensors(got, expected, msg):
    with pytest.raises(TypeError, match=f'diagnose: {msg}'): diagnose(got, expected)

@settings(max_examples=50, deadline=None)
@given(st.integers(0, 2**31), st.floats(0.1, 10).filter(lambda s: abs(s - 1) > 1e-3))
def test_diagnose_finds_a_scale(seed, s):
    k = torch.randn(4, 4, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    assert 'scaled by' in diagnose(s * k, k) and diagnose(k.clone(), k).endswith('correct!')

CASES = {f'square({v})': (torch.tensor(v),) for v in (2., -3.)}
square = lambda t: t ** 2

def test_grade_function(capsys):
    assert grade_function(lambda t: t * t, CASES, square, name='square')
    assert capsys.readouterr().out == 'square: correct!\n'
    assert not grade_function(lambda t: -t * t, CASES, square)
    assert capsys.readouterr().out == 'square(2.0): the sign is flipped: multiply by -1\n'
    assert not grade_function(lambda t: [t, t], CASES, square)
    assert 'wrong shape' in capsys.readouterr().out
    assert not grade_function(lambda t: 1 / 0, CASES, square)
    assert capsys.readouterr().out == 'square(2.0) raised ZeroDivisionError: division by zero\n'

def test_grade_function_with_its_own_mistakes(capsys):
    mistake = lambda label, got, want, t: None if torch.isclose(got, want) else f'{label}: try t * t'
    assert not grade_function(lambda t: t + 2, CASES, square, mistake)  # right for 2, wrong for -3
    assert capsys.readouterr().out == 'square(-3.0): try t * t\n'

@pytest.mark.parametrize('call,exc,msg', [
    (lambda: grade_function(square, [(2.,)], square), TypeError, 'cases must be a dict'),
    (lambda: grade_function(square, CASES, 3), TypeError, 'expected must be callable'),
    (lambda: grade_function(None, CASES, square), TypeError, 'fn must be callable'),  # as every grade_* checker
])
def test_grade_function_refuses_bad_arguments(call, exc, msg):
    with pytest.raises(exc, match=f'grade_function: {msg}'): call()
