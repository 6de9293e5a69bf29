"""The evaluation classifier: a small CNN whose features define the book's sample metrics.

Inception features, the usual basis of FID, were learned on photographs and do not suit
28x28 digits; as TF-GAN's MNIST evaluation does, the book measures sample quality in the
feature space of a classifier trained on MNIST itself. The layer named `features` (128
units, before the last dense layer) gives those features; the logits give the
conditional accuracy of conditional generators.
"""

import keras
from keras import layers

__all__ = ["FEATURES_LAYER", "build_classifier", "feature_extractor"]

FEATURES_LAYER = "features"


def build_classifier(seed=None):
    """Conv 32-32 / pool / Conv 64-64 / pool / Dense 128 (`features`) / Dense 10 (logits).

    Inputs are images in [0, 1], `(n, 28, 28, 1)`. During training only, a random shift
    of up to 2 pixels augments them.
    """
    images = keras.Input((28, 28, 1), name="images")
    h = layers.RandomTranslation(2 / 28, 2 / 28, fill_mode="constant", seed=seed, name="shift")(images)
    for i, filters in enumerate((32, 64)):
        h = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"conv_{i}a")(h)
        h = layers.BatchNormalization(name=f"bn_{i}a")(h)
        h = layers.ReLU()(h)
        h = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"conv_{i}b")(h)
        h = layers.BatchNormalization(name=f"bn_{i}b")(h)
        h = layers.ReLU()(h)
        h = layers.MaxPooling2D(name=f"pool_{i}")(h)
    h = layers.Flatten()(h)
    h = layers.Dense(128, activation="relu", name=FEATURES_LAYER)(h)
    h = layers.Dropout(0.3, seed=seed)(h)
    logits = layers.Dense(10, name="logits")(h)
    return keras.Model(images, logits, name="mnist_classifier")


def feature_extractor(classifier):
    """A model from images to the classifier's 128 features."""
    return keras.Model(classifier.inputs, classifier.get_layer(FEATURES_LAYER).output, name="classifier_features")
