"""The shipped weights: complete model cards, verified files, reproducible figures."""

import shlex

import pytest

from companion import cli, weights

SHIPPED = weights.available()
CARD_FIELDS = ("name", "command", "seed", "backend", "versions", "hardware", "train_seconds", "sha256", "metrics")
SUBSET = "first_1000_test_images"


def test_the_evaluation_classifier_is_shipped_and_meets_its_target():
    assert "classifier" in SHIPPED
    assert weights.card("classifier")["metrics"]["test_accuracy"] >= 0.993


def test_all_weights_together_stay_under_30_mb():
    total = sum((weights.WEIGHTS_DIR / f"{name}.keras").stat().st_size for name in SHIPPED)
    assert total <= 30 * 2**20, f"{total / 2**20:.1f} MB"


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_has_a_complete_card_and_verified_weights(name):
    card = weights.card(name)
    assert all(field in card for field in CARD_FIELDS)
    assert card["name"] == name and card["command"].startswith(f"python -m companion train {name}")
    assert card["sha256"] == weights.sha256_of(weights.WEIGHTS_DIR / f"{name}.keras")
    assert weights.load(name).count_params() == card["parameters"]


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_reproduces_the_subset_figures_in_its_card(name, mnist_dir):
    recorded = dict(weights.card(name)["metrics"][SUBSET])
    argv = shlex.split(recorded.pop("command"))[3:]  # drop "python -m companion"
    argv = [a for a in argv if a != "--update-card"]
    for option in ("--record-as", "--backend"):  # re-measured on the backend this test runs on
        if option in argv:
            i = argv.index(option)
            del argv[i : i + 2]
    measured = cli.run(argv + ["--data-dir", str(mnist_dir)])
    # Same weights, same seed, same 1,000 images: what may differ is float rounding between
    # backends (about 1e-6 relative) or, for accuracies, an argmax flip on a near-tie
    # (1/1000 per image), hence 1e-3 relative and 2e-3 absolute.
    numbers = {k: v for k, v in recorded.items() if isinstance(v, (int, float))}
    assert {k: measured[k] for k in numbers} == pytest.approx(numbers, rel=1e-3, abs=2e-3)
    assert {k: measured[k] for k in recorded if k not in numbers} == {k: v for k, v in recorded.items() if k not in numbers}, (
        "settings such as the sampler's name are equal")


def test_weights_load_verifies_the_sha256(trained):
    folder, _ = trained
    model = weights.load("classifier", directory=folder)
    assert model.count_params() > 0
    path = folder / "classifier.keras"
    content = bytearray(path.read_bytes())
    content[len(content) // 2] ^= 0xFF
    tampered = folder / "tampered"
    tampered.mkdir()
    (tampered / "classifier.keras").write_bytes(bytes(content))
    (tampered / "classifier.json").write_text((folder / "classifier.json").read_text())
    with pytest.raises(weights.WeightsIntegrityError, match=r"classifier.keras: SHA-256 [0-9a-f]{64} does not match"):
        weights.load("classifier", directory=tampered)
    with pytest.raises(FileNotFoundError, match=r"Expected `name` among: classifier. Received: name='nothing'"):
        weights.card("nothing", directory=folder)
