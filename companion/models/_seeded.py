"""Saving the noise generator's state with a model's weights."""

import keras

SEED_KEY = "seed_generator_state"


class SeedStateMixin:
    """Saves `self.seed_generator`'s state with the model's own variables.

    Keras saves layers' variables but not their `SeedGenerator` states, so a model
    reloaded from a checkpoint would draw its training noise from the start again. With
    the state saved, a resumed run draws exactly the noise an uninterrupted one would have.
    """

    def save_own_variables(self, store):
        super().save_own_variables(store)
        store[SEED_KEY] = keras.ops.convert_to_numpy(self.seed_generator.state.value)

    def load_own_variables(self, store):
        keys = list(store.keys())
        if SEED_KEY in keys:
            self.seed_generator.state.assign(store[SEED_KEY][...])
        super().load_own_variables({key: store[key] for key in keys if key != SEED_KEY})
