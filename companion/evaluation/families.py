"""The three families side by side: the diffusion model beside the best VAE and the best
unconditional GAN, measured in one run, on one machine and one metric.

Each shipped unconditional VAE (`VAES`) and GAN (`GANS`) draws as many samples as there are
test images, with the same seed; the one with the lowest classifier FID stands for its
family. A row holds the sample metrics (`evaluate.sample_metrics`), the seconds per 1,000
samples measured while drawing them (after an untimed first call, which compiles; the
diffusion model's from its own evaluation, on `timed_images` images, see `timed_images` of
each row), and from the model's card its parameters, its training
minutes and, for a VAE, its importance-weighted bound in nats per image on the binarized
test images.

The diffusion model has no entry for the likelihood (`DIFFUSION_LIKELIHOOD`): it models
grey levels, a continuous density on [-1, 1]^784, while the VAEs' bounds are probabilities of
binary images; nats of a density and nats of a probability mass on other data do not compare.

>>> from companion.evaluation import families
>>> table = families.compare_families(diffusion_row, x_test, classifier)
"""


from companion import weights
from companion.evaluation import evaluate

__all__ = ["DIFFUSION_LIKELIHOOD", "GANS", "ROW_KEYS", "VAES", "compare_families", "family_row"]

VAES = ("mlp_vae", "conv_vae", "ar_vae")
GANS = ("mlp_gan", "cluster_gan", "cluster_wgan_gp")
ROW_KEYS = ("model", "fid", "precision", "recall", "density", "coverage", "likelihood_nats", "likelihood", "train_minutes",
            "parameters", "seconds_per_1000_images")
DIFFUSION_LIKELIHOOD = ("not comparable: the diffusion model is a density on grey levels in [-1, 1]^784, "
                        "the VAEs' bounds are probabilities of binarized images")


def _likelihood(card):
    """The card's importance-weighted bound with the most samples, and its name (None, None if none)."""
    keys = sorted((k for k in card.get("metrics", {}) if k.startswith("iw_nll_k")), key=lambda k: int(k[len("iw_nll_k"):]))
    return (card["metrics"][keys[-1]], keys[-1]) if keys else (None, None)


def family_row(name, card, measured):
    """One row of the table: `measured` (sample metrics and seconds per 1,000 images) and, from
    the model `card`, parameters, training minutes and the likelihood bound if it has one."""
    nats, key = _likelihood(card)
    row = {"model": name, **{k: measured[k] for k in ("fid", "precision", "recall", "density", "coverage")},
           "likelihood_nats": nats, "likelihood": f"{key}, nats per image, binarized test images" if key else None,
           "train_minutes": None if card.get("train_seconds") is None else round(card["train_seconds"] / 60, 1),
           "parameters": int(card["parameters"]),
           "seconds_per_1000_images": measured["seconds_per_1000_images"]}
    return {k: round(v, 6) if isinstance(v, float) else v for k, v in row.items()}


def _measure(model, real, classifier, n, seed, **generate_options):
    model.generate(min(n, 100), seed=seed, **generate_options)  # warm-up: the first call compiles, and is not timed
    samples, seconds = evaluate.timed_generate(model, n, seed=seed, **generate_options)
    return {**evaluate.sample_metrics(real, evaluate.classifier_features(classifier, samples)), "seconds_per_1000_images": seconds}


def compare_families(diffusion, x_test, classifier, seed=0, load=weights.load, card=weights.card, vaes=VAES, gans=GANS,
                     real_features=None):
    """The table of the three families, a dict family -> row (see `family_row`).

    Args:
        diffusion: the diffusion model's row: its name, its card and what `evaluate_diffusion`
            measured, as `(name, card, results)`; its seconds per 1,000 images are those timed at
            its step count (`results["seconds_per_1000_images_" + steps + "_steps"]`; None if not timed).
        x_test: the test images in [0, 1]; as many samples are drawn from each model.
        classifier: the evaluation classifier.
        seed: the seed of every model's samples.
        load, card: how a shipped model and its card are read (default: `companion.weights`).
        vaes, gans: the candidates of each family.
        real_features: the classifier's features of `x_test`, if the caller has them.
    """
    if classifier is None:
        raise ValueError("Comparing the families needs the evaluation `classifier`. Received: classifier=None")
    name, diffusion_card, results = diffusion
    if results.get("test_images") != len(x_test):
        raise ValueError(f"Expected the diffusion model's results measured on the {len(x_test)} test images given. "
                         f"Received: results of {results.get('test_images')} test images")
    real = evaluate.classifier_features(classifier, x_test) if real_features is None else real_features
    table = {}
    for family, names in (("VAE", vaes), ("GAN", gans)):
        candidates = {candidate: _measure(load(candidate), real, classifier, len(x_test), seed) for candidate in names}
        best = min(candidates, key=lambda candidate: candidates[candidate]["fid"])
        table[family] = {**family_row(best, card(best), candidates[best]), "timed_images": len(x_test),
                         "fid_of_each": {c: round(float(m["fid"]), 6) for c, m in candidates.items()}}
    steps = results["sampling_steps"]
    measured = {**results, "seconds_per_1000_images": results.get(f"seconds_per_1000_images_{steps}_steps")}
    table["diffusion"] = {**family_row(name, diffusion_card, measured), "likelihood": DIFFUSION_LIKELIHOOD,
                          "timed_images": results.get("timed_images"),
                          "sampling": f"DDIM, {steps} steps" + (f", eta {results['eta']:g}" if results.get("eta") else "")}
    return table
