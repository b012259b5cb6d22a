"""Training configuration: dataclasses, the YAML files they are read from, and `a.b=c` overrides.

A training YAML has these sections, each a dataclass below (every key optional, unknown keys are errors):

    model:    preset + any `ModelConfig` field (`mclrt.training.config`)
    data:     kind + workers + the dataset's own options (`mclrt.training.data`)
    loss:     every loss weight                     (`LossWeights`)
    mcl:      the marginal contrastive loss variant (`MCLOptions`)
    vgg:      which VGG the VGG losses use, or off  (`VggOptions`)
    optim:    Adam and learning rates               (`OptimOptions`)
    schedule: run length and learning-rate decay    (`ScheduleOptions`)
    train:    batch, seed, EMA, AMP, device         (`RunOptions`)
    log:      output folder, logging and checkpoint intervals (`LogOptions`)

Defaults are the MCL-Net paper's where it gives a value, else CoCosNet's code
(shared/research/reference_implementations.md §1.6, §1.7, §2.2, §6). The paper's objective (eq. 8)
names its seven terms but publishes no lambda, so every lambda here is CoCosNet's. The per-dataset
values of CoCosNet's README commands live in training/configs/*.yaml.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from mclrt.runtime.errors import UserError

PerceptualLayer = Literal["relu1_2", "relu2_2", "relu3_2", "relu4_2", "relu5_2"]
VggNetwork = Literal["vgg19", "vgg16", "off"]


@dataclass
class DataOptions:
    """`kind` picks the dataset; every other key of the YAML's `data:` mapping goes to that dataset's
    config (`mclrt.training.data.DATASET_KINDS`), e.g. root, reference_list, repeat, load_size.
    `image_size` and `seed` default to the model's image size and the run's seed."""

    kind: Literal["ade20k", "celebahq-edge", "deepfashion", "photos"] = "photos"
    workers: int = 0  # DataLoader worker processes per rank
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class LossWeights:
    """The lambdas of the generator objective: total = sum(weight * loss). A weight of 0 skips the loss.

    CoCosNet's names in brackets; the VGG-based weights are multiplied by `vgg` exactly as CoCosNet
    multiplies them by lambda_vgg, so the per-dataset ratios of its README can be copied as they are.
    """

    gan: float = 10.0  # hinge adversarial loss L_adv [weight_gan]
    gan_feat: float = 10.0  # discriminator feature matching, summed over layers / num_D [lambda_feat]
    vgg: float = 10.0  # common factor of the VGG feature matching and contextual losses [lambda_vgg]
    fm_ratio: float = 0.1  # VGG feature matching on pseudo pairs, x vgg (1.0 for faces and poses) [fm_ratio]
    perceptual: float = 0.01  # L_perc at `perceptual_layer` (0.001 at relu4_2 for faces and poses) [weight_perceptual]
    perceptual_layer: PerceptualLayer = "relu5_2"  # [which_perceptual]
    perceptual_distance: Literal["mse", "l1"] = "mse"  # CoCosNet's code: MSE; the paper's eq. 6 writes L1
    contextual: float = 1.0  # L_cxt vs the exemplar (relu5_2/4_2/3_2 x 8/4/2), x vgg [ctx_w]
    feature_consistency: float = 10.0  # L_fcst, |E_X(X) - E_Z(Y)|_1 [weight_novgg_featpair]
    # L_mcl. 1.0, not the reference code's 0.01: that code (UNITE --nce_w 0.01) computes the loss but never
    # adds it to the generator objective, so 0.01 is not the weight of any trained model; the paper
    # presents MCL as a main term of its objective and publishes no lambda for it.
    mcl: float = 1.0
    cycle: float = 0.0  # L_cyc, warp back with the transposed softmax [warp_cycle_w; 1 CelebA-edge, 0.1 CelebA-mask]
    # L_pse, warped exemplar vs ground truth on pseudo pairs [warp_self_w; 100 DeepFashion]. Our loss averages
    # over the pseudo-pair samples only, CoCosNet divides once more by the batch size: its 100 is 100 / batch here.
    pseudo_pair: float = 0.0
    warped_label: float = 0.0  # warped one-hot labels vs ground-truth labels, label datasets [weight_mask; 100 ADE20K]
    fsesim: float = 0.0  # F-LSeSim's fixed self-similarity structure loss (seed paper 004); off, as in MCL-Net
    # L1 of the output against the ground truth on pseudo pairs. Neither MCL-Net nor CoCosNet has it (0 in the
    # paper configs): there the VGG feature matching on pseudo pairs does this job. Without VGG weights
    # (vgg.network off, the CPU demo) it is the only loss that ties the output's pixels to the ground truth.
    output_l1: float = 0.0


@dataclass
class MCLOptions:
    """Which marginal contrastive loss: the paper's (m 0.4, tau 0.07, both directions, projection heads;
    256 sampled positions is our choice, eq. 1 uses all) or the public reference code's (64 positions, m 0.25, tau 0.05, one direction,
    no heads, image branch detached); see `mclrt.training.losses.MCLSettings`."""

    variant: Literal["paper", "reference-code"] = "paper"
    num_positions: int | None = None  # None: the variant's own value


@dataclass
class VggOptions:
    """The frozen VGG of the perceptual, contextual and feature-matching losses.

    `network: off` turns those losses off. It must be said explicitly (YAML: `network: "off"`, quoted,
    since YAML 1.1 reads a bare off as false) and it is written to the run's config.yaml, so a model
    trained without them can always be told apart. vgg16 is the documented offline stand-in
    (`mclrt.tools.convert_lpips_vgg16`).
    """

    network: VggNetwork = "vgg19"
    path: str | None = None  # else $MCLRT_VGG19 / $MCLRT_VGG16, else the torch hub cache
    sha256: str | None = None  # expected digest (or a prefix of 8+ hex digits) for files whose name has none


@dataclass
class OptimOptions:
    """Adam with beta1 = 0, beta2 = 0.999, as the MCL-Net paper states (sec. 4.1 and its supplement).

    CoCosNet's code (TTUR) uses betas (0, 0.9); the paper says 0.999 and so do we. Learning rates are
    CoCosNet's TTUR pair, which the paper repeats: 1e-4 for generator and correspondence, 4e-4 for D.
    """

    lr_generator: float = 1e-4
    lr_correspondence: float = 1e-4  # correspondence network and the MCL projection heads
    lr_discriminator: float = 4e-4
    beta1: float = 0.0
    beta2: float = 0.999
    # Adam's eps for the generator/correspondence optimizer. CoCosNet uses 1e-3 there (the paper configs
    # do too); 1e-8 is Adam's default and learns faster on the tiny demo.
    generator_eps: float = 1e-8
    discriminator_eps: float = 1e-8


@dataclass
class ScheduleOptions:
    """Run length: constant learning rate, then a linear decay to 0 (CoCosNet's niter + niter_decay).

    Give either epochs (`epochs` + `decay_epochs`, the paper datasets) or steps (`steps` +
    `decay_steps`, the demo); the learning rate is updated every step along the same line.
    """

    epochs: int | None = None
    decay_epochs: int = 0
    steps: int | None = None
    decay_steps: int = 0


@dataclass
class RunOptions:
    batch_size: int = 4  # global: split evenly over the DDP ranks (CoCosNet's paper runs: 32 over 8 GPUs)
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"  # auto: CUDA when available
    amp: bool = False  # float16 autocast + grad scaling; CUDA only (ignored, and said so, on CPU)
    ema: bool = False  # keep an exponential moving average of the generator-side weights
    ema_beta: float = 0.999
    d_steps_per_g: int = 1  # CoCosNet: one D step per G step
    threads: int | None = None  # torch CPU threads per rank; None: torch's default


@dataclass
class LogOptions:
    out: str = "runs/train"  # the run folder: config.yaml, metrics.jsonl, tensorboard/, checkpoints/
    log_every: int = 50  # steps between logged scalars (averaged over ranks)
    image_every: int = 500  # steps between TensorBoard image grids; 0: never
    checkpoint_every: int = 1000  # steps between checkpoints (one is always written at the end)
    keep_last: int = 3  # checkpoints kept; older ones are deleted
    tensorboard: bool = True


@dataclass
class TrainConfig:
    model: dict[str, Any] = field(default_factory=lambda: {"preset": "nano"})
    data: DataOptions = field(default_factory=DataOptions)
    loss: LossWeights = field(default_factory=LossWeights)
    mcl: MCLOptions = field(default_factory=MCLOptions)
    vgg: VggOptions = field(default_factory=VggOptions)
    optim: OptimOptions = field(default_factory=OptimOptions)
    schedule: ScheduleOptions = field(default_factory=ScheduleOptions)
    train: RunOptions = field(default_factory=RunOptions)
    log: LogOptions = field(default_factory=LogOptions)

    def model_config(self):
        """The `ModelConfig` of `model:` (a preset plus overrides)."""
        from mclrt.training.config import load_model_config

        overrides = dict(self.model)
        return load_model_config(str(overrides.pop("preset", "nano")), overrides)

    def dataset_options(self) -> dict[str, Any]:
        """`data:` options with image_size and seed filled in from the model and the run."""
        options = dict(self.data.options)
        options.setdefault("image_size", self.model_config().image_size)
        options.setdefault("seed", self.train.seed)
        return options

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["data"] = {"kind": self.data.kind, "workers": self.data.workers, **self.data.options}
        return data


SECTIONS = tuple(f.name for f in dataclasses.fields(TrainConfig))


# --- reading ---------------------------------------------------------------------------------------


def read_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """A training YAML as a mapping of its sections; UserError (naming the file) when it cannot be read,
    is not valid YAML, is not a mapping, or has a section this trainer does not know."""
    path = Path(path)
    if not path.is_file():
        raise UserError("no such file" if not path.exists() else "not a file", path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise UserError(f"is not UTF-8 text: {err.reason} at byte {err.start}", path) from err
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise UserError(f"malformed YAML: {where}{problem}", path) from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"expected a mapping of sections ({', '.join(SECTIONS)}), got {type(data).__name__}", path)
    for section, value in data.items():
        if section not in SECTIONS:
            raise UserError(f"unknown section {section!r}; known: {', '.join(SECTIONS)}", path)
        if value is not None and not isinstance(value, dict):
            raise UserError(f"section {section!r} must be a mapping, got {type(value).__name__}", path)
    return {section: dict(value or {}) for section, value in data.items()}  # an empty section is {}


def parse_override(text: str) -> tuple[list[str], Any]:
    """`a.b=c` -> (["a", "b"], value), the value read as YAML (so 1e-4, true, [1, 2] and "off" work)."""
    key, sep, raw = text.partition("=")
    parts = key.strip().split(".")
    if not sep or len(parts) < 2 or not all(parts):
        raise UserError(f"override {text!r} is not of the form section.key=value (e.g. train.batch_size=8)")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as err:
        raise UserError(f"override {text!r}: the value is not valid YAML ({str(err).splitlines()[0]})") from err
    return parts, value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    merged = {section: dict(values or {}) for section, values in data.items()}
    for text in overrides:
        parts, value = parse_override(text)
        if parts[0] not in SECTIONS:
            raise UserError(f"override {text!r}: unknown section {parts[0]!r}; known: {', '.join(SECTIONS)}")
        target = merged.setdefault(parts[0], {})
        for part in parts[1:-1]:
            nested = target.get(part)
            if not isinstance(nested, dict):
                nested = target[part] = {}
            target = nested
        target[parts[-1]] = value
    return merged


def config_from_dict(data: dict[str, Any], source: str | os.PathLike | None = None) -> TrainConfig:
    """Build and check a TrainConfig; every problem is a UserError naming `source` and the key."""
    config = TrainConfig()
    for section, values in data.items():
        if section not in SECTIONS:
            raise UserError(f"unknown section {section!r}; known: {', '.join(SECTIONS)}", source)
        values = dict(values or {})
        if section == "model":
            config.model = {"preset": "nano", **values}
        elif section == "data":
            config.data = _data_options(values, source)
        else:
            setattr(config, section, _build(type(getattr(config, section)), values, section, source))
    _check(config, source)
    return config


def load_train_config(path: str | os.PathLike | None, overrides: list[str] | None = None) -> TrainConfig:
    """The training config of a YAML file (None: all defaults) with `a.b=c` overrides applied."""
    data = read_yaml(path) if path is not None else {}
    return config_from_dict(apply_overrides(data, list(overrides or [])), path)


def write_yaml(config: TrainConfig) -> str:
    return yaml.safe_dump(config.to_dict(), sort_keys=False)


# --- checking ----------------------------------------------------------------------------------------


def _data_options(values: dict[str, Any], source) -> DataOptions:
    from mclrt.training.data import DATASET_KINDS

    kind = values.pop("kind", "photos")
    if kind not in DATASET_KINDS:
        raise UserError(f"data.kind: unknown dataset {kind!r}; choose one of {', '.join(DATASET_KINDS)}", source)
    workers = values.pop("workers", 0)
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 0:
        raise UserError(f"data.workers: expected a non-negative integer, got {workers!r}", source)
    config_type = DATASET_KINDS[kind][0]
    known = {f.name for f in dataclasses.fields(config_type)}
    for key in values:
        if key not in known:
            raise UserError(f"data.{key}: unknown option of the {kind} dataset; known: {', '.join(sorted(known | {'kind', 'workers'}))}", source)
    return DataOptions(kind=kind, workers=workers, options=values)


def _build(cls: type, values: dict[str, Any], section: str, source) -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in values.items():
        if key not in known:
            raise UserError(f"{section}.{key}: unknown key; known: {', '.join(sorted(known))}", source)
        kwargs[key] = _coerce(value, hints[key], f"{section}.{key}", source)
    return cls(**kwargs)


def _coerce(value: Any, hint: Any, where: str, source) -> Any:
    """Check a YAML value against a field's type; ints become floats where a float is expected."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], where, source)
    if origin is Literal:
        if value is False and "off" in args:  # YAML 1.1 reads a bare `off` as false
            value = "off"
        if value not in args:
            raise UserError(f"{where}: expected one of {', '.join(map(str, args))}, got {value!r}", source)
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise UserError(f"{where}: expected true or false, got {value!r}", source)
        return value
    if hint is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise UserError(f"{where}: expected an integer, got {value!r}", source)
        return value
    if hint is float:
        if isinstance(value, str):  # PyYAML reads 1e-4 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise UserError(f"{where}: expected a number, got {value!r}", source)
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise UserError(f"{where}: expected a string, got {value!r}", source)
        return value
    return value


def _check(config: TrainConfig, source) -> None:
    """Cross-field checks, each naming the key at fault."""
    try:
        model = config.model_config()
    except UserError as err:
        raise UserError(f"model: {err.problem}", source) from err
    image_size = config.data.options.get("image_size")
    if image_size is not None and image_size != model.image_size:
        raise UserError(f"data.image_size {image_size} differs from the model's image_size {model.image_size}", source)
    schedule = config.schedule
    if (schedule.epochs is None) == (schedule.steps is None):
        raise UserError("schedule: give either epochs (+ decay_epochs) or steps (+ decay_steps), not both or neither", source)
    length, decay = (schedule.epochs, schedule.decay_epochs) if schedule.steps is None else (schedule.steps, schedule.decay_steps)
    if length < 0 or decay < 0 or length + decay < 1:
        raise UserError("schedule: the run must be at least one step (or epoch) long, and no part negative", source)
    positive = {
        "train.batch_size": config.train.batch_size,
        "train.d_steps_per_g": config.train.d_steps_per_g,
        "log.log_every": config.log.log_every,
        "log.checkpoint_every": config.log.checkpoint_every,
        "log.keep_last": config.log.keep_last,
    }
    for key, value in positive.items():
        if value < 1:
            raise UserError(f"{key} must be at least 1, got {value}", source)
    if config.log.image_every < 0:
        raise UserError("log.image_every must be >= 0 (0: no images)", source)
    if config.train.threads is not None and config.train.threads < 1:
        raise UserError("train.threads must be at least 1", source)
    if not 0.0 <= config.train.ema_beta < 1.0:
        raise UserError("train.ema_beta must lie in [0, 1)", source)
    for name in ("beta1", "beta2"):
        if not 0.0 <= getattr(config.optim, name) < 1.0:
            raise UserError(f"optim.{name} must lie in [0, 1)", source)
    for f in dataclasses.fields(LossWeights):
        value = getattr(config.loss, f.name)
        if isinstance(value, float) and value < 0:
            raise UserError(f"loss.{f.name} must be >= 0, got {value}", source)
    if config.mcl.num_positions is not None and config.mcl.num_positions < 2:
        raise UserError("mcl.num_positions must be at least 2 (one positive, one negative)", source)
    if config.loss.warped_label > 0 and model.condition_kind != "label":
        raise UserError(f"loss.warped_label needs a label dataset; the model's condition is {model.condition_kind!r}", source)


def uses_vgg(config: TrainConfig) -> bool:
    """Whether any loss that needs VGG features has a non-zero weight."""
    w = config.loss
    return w.vgg * (w.fm_ratio + w.contextual) > 0 or w.perceptual > 0 or w.fsesim > 0


__all__ = [
    "TrainConfig",
    "DataOptions",
    "LossWeights",
    "MCLOptions",
    "VggOptions",
    "OptimOptions",
    "ScheduleOptions",
    "RunOptions",
    "LogOptions",
    "read_yaml",
    "load_train_config",
    "config_from_dict",
    "apply_overrides",
    "parse_override",
    "write_yaml",
    "uses_vgg",
]
