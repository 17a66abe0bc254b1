from algorithm.early_stopping import EarlyStopping


def _run(scores, **kwargs):
    stopper = EarlyStopping(**kwargs)
    for epoch, score in enumerate(scores, start=1):
        stopper.update(epoch, score)
        if stopper.should_stop(epoch):
            return epoch, stopper
    return None, stopper


def test_stops_after_patience_epochs_without_improvement():
    epoch, stopper = _run([0.1, 0.2, 0.3, 0.3, 0.29, 0.3, 0.5], min_epochs=1, patience=3)
    assert epoch == 6
    assert (stopper.best, stopper.best_epoch) == (0.3, 3)


def test_never_before_min_epochs():
    epoch, _ = _run([0.5, 0.4, 0.4, 0.4, 0.4, 0.4], min_epochs=5, patience=2)
    assert epoch == 5


def test_relative_tolerance():
    # 0.30 -> 0.305 is a 1.7% relative gain: not enough with tolerance 0.05.
    epoch, stopper = _run([0.3, 0.305, 0.31, 0.4], min_epochs=1, patience=2, tolerance=0.05)
    assert epoch == 3 and stopper.best == 0.3
    epoch, _ = _run([0.3, 0.305, 0.31, 0.4], min_epochs=1, patience=2, tolerance=0.01)
    assert epoch is None


def test_zero_best_improves_on_any_positive_score():
    stopper = EarlyStopping(min_epochs=1, patience=1)
    assert stopper.update(1, 0.0)
    assert stopper.update(2, 0.01)


def test_state_round_trip():
    _, stopper = _run([0.1, 0.3, 0.2], min_epochs=10)
    restored = EarlyStopping(min_epochs=10)
    restored.load_state_dict(stopper.state_dict())
    assert restored.state_dict() == {"best": 0.3, "best_epoch": 2, "stale_epochs": 1}
