"""
The configuration of one training run, and where its results live.

.. autosummary::
    :nosignatures:

    RunConfig
    run_seeds
    experiment_words
    group_configs

A :class:`RunConfig` names one run of one cell of the grid: the ``setup``
(network and data set), the ``cell`` (optimizer, learning rate, beta2, bias
correction) and the ``run`` (the repetition index), plus the protocol
(epochs, batch size, schedule, loss, seed).  It is frozen, checked when it is
made, serialised as the run's ``config.json`` and names the run's directory::

    R/SETUP/OPTIMIZER_lr=LR_b2=B2_bc=on|off/run=K/

A CIFAR-10 run without input centring (``cifar_centering=False``, the code of
the original's final commit rather than the one that wrote its logs) lives in
``R/SETUP/CELL_centering=off/run=K/``, and a run on common random numbers
(``seeding="common"``, see :func:`run_seeds`) in ``R/SETUP/CELL_seeding=common/run=K/``:
runs of different kinds never share a directory.

Examples
--------
>>> from experiments.records.config import RunConfig
>>> config = RunConfig(setup="logreg", optimizer="amsgrad", lr=0.001, beta2=0.99,
...                    bias_correction=False, run=0)
>>> config.cell_name
'amsgrad_lr=0.001_b2=0.99_bc=off'
>>> config.run_dir("results")
'results/logreg/amsgrad_lr=0.001_b2=0.99_bc=off/run=0'
"""
import dataclasses
import hashlib
import json
import math
import numbers
import os

import numpy as np

from errors import UserError
from experiments.records import optimizers, schedule, setups

__all__ = ["RunConfig", "run_seeds", "experiment_words", "describe_differences", "LOSSES",
           "SEEDINGS", "float32_problem", "program_key", "group_configs", "VALUE_FIELDS",
           "PROTOCOL_FIELDS", "RECORDED", "UnknownFields", "MAX_EPOCHS", "MAX_BATCH_SIZE"]

LOSSES = ("categorical", "binary")
#: How runs draw their initial weights and data order (:func:`run_seeds`); the first is
#: the default.  ``config.json`` files written before 2026-12-05 have no ``seeding``: they
#: were drawn as ``common``.
SEEDINGS = ("independent", "common")
#: The RunConfig fields of the protocol (besides CIFAR-10 centring), the blog's by default.
PROTOCOL_FIELDS = ("epochs", "batch_size", "lr_schedule", "loss", "beta1", "epsilon")
#: The RunConfig fields that are values, not constants, of a run's compiled graph (``lr``
#: only for an optimizer that lists it in :attr:`experiments.records.optimizers.Optimizer.values`,
#: as the project's do).
VALUE_FIELDS = ("lr", "run", "seed", "seeding")


def _is_real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


class UnknownFields(UserError):
    """A configuration with fields this version does not know."""


#: What a ``config.json`` records beside the fields
#: (:func:`experiments.store.rundir.write_config`, :func:`~experiments.store.rundir.record_machine`).
RECORDED = ("data", "setup_definition", "versions", "theano_flags", "threads", "machines")
#: The longest run: its history, schedule and run directory stay of a sane size (the
#: blog's runs have 150 epochs).
MAX_EPOCHS = 100000
#: The largest minibatch of a setup whose training set size is not known beforehand.
MAX_BATCH_SIZE = 1 << 20


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


_FLOAT32 = np.finfo(np.float32)


def float32_problem(value, dtype="float32"):
    """How a positive number changes in the float32 the runs compute in.

    Parameters
    ----------
    value : float
        A finite number > 0
    dtype : str
        The type it is computed in (the synthetic job's ``--dtype`` may be float64)

    Returns
    -------
    str or None
        ``"is 0 in float32"``, ``"is infinite in float32"`` or ``"is subnormal
        in float32 (imprecise)"``; None when it is a normal float32 number.
    """
    kind = np.dtype(dtype)
    with np.errstate(over="ignore"):
        rounded = kind.type(value)
    if rounded == 0:
        return "is 0 in %s" % kind.name
    if not np.isfinite(rounded):
        return "is infinite in %s" % kind.name
    if rounded < np.finfo(kind).tiny:
        return "is subnormal in %s (imprecise)" % kind.name
    return None


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """One training run: setup, cell, run index and protocol.

    Parameters
    ----------
    setup : str
        Network and data set: ``logreg``, ``ffnn`` (MNIST), ``cifarnet``,
        ``small_vgg``, ``vgg`` (CIFAR-10)
    optimizer : str
        A registered optimizer (:mod:`experiments.records.optimizers`): ``adam``,
        ``amsgrad``, ``adamnc`` or a plug-in's
    lr : float
        Initial learning rate, > 0
    beta2 : float
        Decay rate of the second moment estimates, in (0, 1)
    bias_correction : bool
        Whether the optimizer corrects the moment estimates' initial bias
    run : int
        Repetition index, >= 0; with ``seed`` and ``seeding`` it determines
        all randomness (see :func:`run_seeds`)
    epochs : int
        Length of the run (and of the learning rate schedule), >= 1
    batch_size : int
        Training minibatch size, >= 1
    lr_schedule : str
        ``linear`` (decay to 0 over ``epochs``, lowered by lr/epochs after
        each epoch), ``inv-sqrt`` (lr / sqrt(t), t counted in updates) or
        ``constant``
    seed : int
        Base seed, >= 0
    seeding : str
        ``independent`` (every run of every cell its own draw of initial
        weights and data order, as in the original's unseeded runs) or
        ``common`` (run K of every cell the same draw: common random numbers,
        for paired comparisons); see :func:`run_seeds`
    loss : str
        ``categorical`` (mean categorical cross-entropy) or ``binary`` (mean
        over examples of the sum over classes of binary cross-entropies)
    beta1, epsilon : float
        The optimizer's other constants (the blog's 0.9 and 1e-8)
    cifar_centering : bool
        CIFAR-10 setups: subtract the training set's per-pixel mean image from
        the training and validation inputs (True, the protocol of the
        original's logs; see :func:`data.load_dataset`).  MNIST is always
        centred, as in the original, so MNIST setups take only True.

    Raises
    ------
    errors.UserError
        For a value outside its range, also in the float32 the runs compute
        in (``lr`` and ``epsilon`` normal float32 numbers, ``beta1`` and
        ``beta2`` below 1 there); the message names the option.
    """
    setup: str
    optimizer: str
    lr: float
    beta2: float
    bias_correction: bool
    run: int = 0
    epochs: int = 150
    batch_size: int = 128
    lr_schedule: str = "linear"
    seed: int = 0
    loss: str = "categorical"
    beta1: float = 0.9
    epsilon: float = 1e-8
    cifar_centering: bool = True
    seeding: str = "independent"

    def __post_init__(self):
        self._check_names()
        self._check_numbers()
        self._check_float32()
        for name in ("bias_correction", "cifar_centering"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise UserError("%s must be True or False, got %r"
                                % (name, getattr(self, name)))
        if not self.cifar_centering and self.dataset != "cifar10":
            raise UserError("--cifar-centering off applies to the CIFAR-10 setups only; %s "
                            "trains on %s, which is always centred as in the original"
                            % (self.setup, self.dataset))
        # Canonical types, so that equal configurations compare and serialise equal.
        for name in ("lr", "beta2", "beta1", "epsilon"):
            object.__setattr__(self, name, float(getattr(self, name)))
        for name in ("run", "epochs", "batch_size", "seed"):
            object.__setattr__(self, name, int(getattr(self, name)))
        object.__setattr__(self, "bias_correction", bool(self.bias_correction))
        object.__setattr__(self, "cifar_centering", bool(self.cifar_centering))

    def _check_names(self):
        setups.get(self.setup)
        schedule.get(self.lr_schedule)
        optimizers.get(self.optimizer)
        for name, options in (("loss", LOSSES), ("seeding", SEEDINGS)):
            if getattr(self, name) not in options:
                raise UserError("%s must be one of %s, got %r"
                                % (name, ", ".join(options), getattr(self, name)))

    def _check_numbers(self):
        if not _is_real(self.lr) or not math.isfinite(self.lr) or self.lr <= 0:
            raise UserError("--lr must be a number > 0, got %r" % (self.lr,))
        if not _is_real(self.beta2) or not 0 < self.beta2 < 1:
            raise UserError("--beta2 must be a number in (0, 1), got %r" % (self.beta2,))
        if not _is_real(self.beta1) or not 0 <= self.beta1 < 1:
            raise UserError("beta1 must be a number in [0, 1), got %r" % (self.beta1,))
        if not _is_real(self.epsilon) or not self.epsilon > 0:
            raise UserError("epsilon must be a number > 0, got %r" % (self.epsilon,))
        for name, minimum in (("run", 0), ("epochs", 1), ("batch_size", 1), ("seed", 0)):
            value = getattr(self, name)
            if not _is_int(value) or value < minimum:
                raise UserError("--%s must be an integer >= %d, got %r"
                                % (name.replace("_", "-"), minimum, value))
        # What a run can hold, checked before anything is allocated: a history and a
        # schedule of MAX_EPOCHS epochs, a minibatch of at most the training set.
        examples = setups.TRAIN_EXAMPLES.get(self.dataset, MAX_BATCH_SIZE)
        for name, maximum, what in (("epochs", MAX_EPOCHS, "epochs a run can record"),
                                    ("batch_size", examples, "training examples of %s"
                                     % self.dataset)):
            if getattr(self, name) > maximum:
                raise UserError("--%s must be at most %d (the %s), got %d"
                                % (name.replace("_", "-"), maximum, what, getattr(self, name)))

    def _check_float32(self):
        # The runs compute in float32: a value valid in float64 can become 0, 1 or
        # infinite there (an lr of 1e-46 trains nothing, a beta2 of 0.99999999 is 1).
        for name, option in (("lr", "--lr"), ("epsilon", "epsilon"), ("beta2", "--beta2")):
            problem = float32_problem(getattr(self, name))
            if problem:
                raise UserError("%s %r %s, which the runs compute in; use a value between "
                                "%.3g and %.3g" % (option, getattr(self, name), problem,
                                                   _FLOAT32.tiny, _FLOAT32.max))
        for name, option in (("beta2", "--beta2"), ("beta1", "beta1")):
            if np.float32(getattr(self, name)) >= 1:
                raise UserError("%s %r is 1 in float32, which the runs compute in; the largest "
                                "value below 1 there is %.8g" % (
                                    option, getattr(self, name),
                                    np.nextafter(np.float32(1), np.float32(0))))

    @property
    def dataset(self):
        """Name of the data set the setup trains on (``mnist`` or ``cifar10``)."""
        return setups.get(self.setup).dataset

    @property
    def cell_name(self):
        """``OPTIMIZER_lr=LR_b2=B2_bc=on|off``, numbers written with Python's ``repr``.

        ``_centering=off`` is appended for an uncentred CIFAR-10 run,
        ``_seeding=common`` for a run on common random numbers.
        """
        return "%s_lr=%r_b2=%r_bc=%s%s%s" % (
            self.optimizer, self.lr, self.beta2, "on" if self.bias_correction else "off",
            "" if self.cifar_centering else "_centering=off",
            "" if self.seeding == SEEDINGS[0] else "_seeding=" + self.seeding)

    @property
    def protocol_name(self):
        """The protocol fields that differ from the blog's, e.g. ``epochs=50_loss=binary``.

        Empty for the blog's protocol (the fields' defaults; CIFAR-10 centring is
        in :attr:`cell_name` instead).  Names files that hold runs of one
        protocol (packed runs, figures).
        """
        fields = {field.name: field.default for field in dataclasses.fields(self)}
        return "_".join("%s=%s" % (name, getattr(self, name)) for name in PROTOCOL_FIELDS
                        if getattr(self, name) != fields[name])

    def run_dir(self, results_dir):
        """The run's directory: ``results_dir/SETUP/CELL/run=K``."""
        return os.path.join(results_dir, self.setup, self.cell_name, "run=%d" % self.run)

    def to_dict(self):
        """The fields as a plain dict (the identity part of ``config.json``)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values):
        """The config of a ``config.json``; what it records beside the fields
        (:data:`RECORDED`: versions, flags, data, machines) is ignored, and any
        other key is refused (errors.UserError): a field this version does not
        know, as a newer version would write, changes what the run is.

        A CIFAR-10 ``config.json`` without ``cifar_centering`` was written
        before centring became the default (2026-11-30), by code that did not
        centre: it is read as ``cifar_centering=False``.  One without
        ``seeding`` was written before independent draws became the default
        (2026-12-05): it is read as ``seeding="common"``.
        """
        names = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names - set(RECORDED))
        if unknown:
            raise UnknownFields("has %s %s, which this version does not know (written by a "
                                "newer version?)" % ("a field" if len(unknown) == 1 else
                                                     "fields", ", ".join(unknown)))
        fields = {k: v for k, v in values.items() if k in names}
        fields.setdefault("seeding", "common")
        setup = fields.get("setup")
        legacy_cifar = setup in setups.names() and setups.get(setup).dataset == "cifar10"
        if legacy_cifar and "cifar_centering" not in fields:
            fields["cifar_centering"] = False
        return cls(**fields)

    def differences(self, other):
        """Fields whose values differ from ``other``'s, as ``name: (ours, theirs)``."""
        ours, theirs = self.to_dict(), other.to_dict()
        return {k: (ours[k], theirs[k]) for k in ours if ours[k] != theirs[k]}


def describe_differences(differences):
    """``name=THEIRS there, OURS here, ...`` of :meth:`RunConfig.differences` (sorted by name)."""
    return ", ".join("%s=%r there, %r here" % (name, theirs, ours)
                     for name, (ours, theirs) in sorted(differences.items()))


def run_seeds(config):
    """The seeds of a run's two random generators.

    Parameters
    ----------
    config : RunConfig

    Returns
    -------
    model_seed, batch_seed : numpy.ndarray of uint32
        ``model_seed`` seeds ``lasagne.random``'s generator before the
        network is built (initial weights, and through them the seeds of the
        dropout layers' MRG streams); ``batch_seed`` seeds the
        ``numpy.random.RandomState`` the training batches draw from (shuffling,
        filling up the last batch, flips).

    Notes
    -----
    With ``seeding="independent"`` (the default) the seeds come from
    ``numpy.random.SeedSequence([seed, run, *words])``, ``words`` the SHA-256
    of the run's other fields (:func:`experiment_words`): every run of every
    cell is its own draw, like the original's unseeded runs, and the same on
    every machine and Python.  With ``seeding="common"`` they come from
    ``SeedSequence([seed, run])`` alone: run K of every cell of a setup starts
    from the same weights and sees the examples in the same order (the batch
    iterator's draws do not depend on the model), so cells are compared on
    common random numbers.
    """
    entropy = [config.seed, config.run]
    if config.seeding == "independent":
        entropy += experiment_words(config)
    model_sequence, batch_sequence = np.random.SeedSequence(entropy).spawn(2)
    return model_sequence.generate_state(4), batch_sequence.generate_state(4)


def experiment_words(config):
    """Eight 32-bit words of the SHA-256 of the run's experiment: its fields but ``run``,
    ``seed`` and ``seeding``, those with a default only where they differ from it.

    Canonical JSON (sorted keys, ``repr`` of floats), so the words, unlike
    Python's ``hash``, are the same in every process and on every machine; a
    field added to :class:`RunConfig` later changes no existing run's words.
    """
    defaults = {field.name: field.default for field in dataclasses.fields(config)}
    fields = {name: value for name, value in config.to_dict().items()
              if name not in ("run", "seed", "seeding") and value != defaults[name]}
    digest = hashlib.sha256(json.dumps(fields, sort_keys=True).encode("ascii")).digest()
    return [int.from_bytes(digest[i:i + 4], "little") for i in range(0, 32, 4)]


def program_key(config):
    """What two runs must share to be trained in one batch.

    Every field but :data:`VALUE_FIELDS` (an optimizer's setting only if the
    optimizer reads it as a value) and the optimizer's settings it does not
    use (ADAMNC's ``beta2`` and ``bias_correction``).
    """
    fields = config.to_dict()
    optimizer = optimizers.get(config.optimizer)
    for name in VALUE_FIELDS:
        if name not in optimizers.FIELDS or name in optimizer.values:
            del fields[name]
    for name in optimizers.FIELDS:
        if not optimizer.uses(name):
            del fields[name]
    return tuple(sorted(fields.items()))


def group_configs(configs, batch_runs=None):
    """Split runs into batches that share a program.

    Parameters
    ----------
    configs : sequence of RunConfig
    batch_runs : int or None
        At most this many runs per batch; None: no limit (a batch may still
        be trained in parts, see
        :func:`experiments.training.batched.train_batch`)

    Returns
    -------
    list of lists of RunConfig
        Each list's runs share :func:`program_key`; in order of first
        appearance, and the runs of a list in the order of ``configs``
    """
    if batch_runs is not None and batch_runs < 1:
        raise ValueError("batch_runs must be >= 1, got %r" % (batch_runs,))
    groups = {}
    for config in configs:
        groups.setdefault(program_key(config), []).append(config)
    size = batch_runs or max([len(group) for group in groups.values()] or [1])
    return [group[start:start + size] for group in groups.values()
            for start in range(0, len(group), size)]
