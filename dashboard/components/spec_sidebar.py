"""The Train page's sidebar: widgets that edit a ModelSpec and a TrainConfig.

Session state is the single source of truth: every control has a stable key, and presets, imports and
add/remove buttons write those keys in callbacks. Streamlit forgets widget keys on a page switch, so the
last spec is also kept under plain keys and the widgets are re-seeded from it on return. The spec is also
in the URL (`?spec=...`), so a reload keeps it and a link reproduces it, as TensorFlow Playground does.
"""

from __future__ import annotations

import base64
import binascii
import zlib

import streamlit as st

from mnist_core import spec as specs
from mnist_core.display import markdown_literal
from mnist_core.errors import LabError
from mnist_core.spec_words import AUGMENT_WORDS

DEFAULT_PRESET = "mlp-2x128"
CUSTOM = "custom"
URL_PARAM = "spec"
MAX_URL_SPEC = 4096  # characters of the encoded spec accepted from a URL, checked before decoding
MAX_BATCH = 4096  # the batch-size box's bound: a spec from a link or a file beyond it is refused, not clamped
ss = st.session_state


def _set_conv(i: int, b: specs.ConvBlock) -> None:
    ss.update({f"sb_c{i}_filters": b.filters, f"sb_c{i}_kernel": b.kernel, f"sb_c{i}_activation": b.activation,
               f"sb_c{i}_padding": b.padding, f"sb_c{i}_pooling": b.pooling, f"sb_c{i}_bn": b.batch_norm,
               f"sb_c{i}_dropout": float(b.dropout)})


def _set_dense(i: int, d: specs.DenseLayer) -> None:
    ss.update({f"sb_d{i}_units": d.units, f"sb_d{i}_activation": d.activation, f"sb_d{i}_dropout": float(d.dropout)})


def _seed(spec: specs.ModelSpec, config: specs.TrainConfig, preset: str | None = None) -> None:
    ss.sb_preset = preset or CUSTOM
    ss.sb_kind = spec.kind
    ss.sb_n_conv, ss.sb_n_dense = len(spec.conv_blocks), len(spec.dense_layers)
    for i, b in enumerate(spec.conv_blocks):
        _set_conv(i, b)
    for i, d in enumerate(spec.dense_layers):
        _set_dense(i, d)
    ss.update({"sb_optimizer": config.optimizer, "sb_lr": float(config.learning_rate), "sb_schedule": config.schedule,
               "sb_warmup": float(config.warmup_fraction), "sb_batch": config.batch_size, "sb_epochs": config.epochs,
               "sb_val": float(config.validation_split), "sb_seed": config.seed, "sb_augment": config.augment,
               "sb_patience": getattr(config, "patience", 0),
               "sb_adversarial_eps": float(getattr(config, "adversarial_eps", 0.0))})


def _read() -> tuple[specs.ModelSpec, specs.TrainConfig]:
    conv = [specs.ConvBlock(ss[f"sb_c{i}_filters"], ss[f"sb_c{i}_kernel"], ss[f"sb_c{i}_activation"],
                            ss[f"sb_c{i}_padding"], ss[f"sb_c{i}_pooling"], ss[f"sb_c{i}_bn"], ss[f"sb_c{i}_dropout"])
            for i in range(ss.sb_n_conv)]
    dense = [specs.DenseLayer(ss[f"sb_d{i}_units"], ss[f"sb_d{i}_activation"], ss[f"sb_d{i}_dropout"])
             for i in range(ss.sb_n_dense)]
    spec = specs.ModelSpec(ss.sb_kind, conv if ss.sb_kind == "cnn" else [], dense)
    fields = dict(optimizer=ss.sb_optimizer, learning_rate=ss.sb_lr, schedule=ss.sb_schedule,
                  warmup_fraction=ss.sb_warmup, batch_size=ss.sb_batch, epochs=ss.sb_epochs,
                  validation_split=ss.sb_val, seed=ss.sb_seed, augment=ss.sb_augment)
    if "patience" in specs.TrainConfig.__dataclass_fields__:
        fields["patience"] = ss.get("sb_patience", 0)
    fields["adversarial_eps"] = ss.get("sb_adversarial_eps", 0.0)
    return spec, specs.TrainConfig(**fields)


def current() -> tuple[specs.ModelSpec, specs.TrainConfig]:
    """The spec and config the widgets hold right now (also inside a callback, before the script reruns)."""
    return _read()


# ---------- callbacks (run before the script, so they may write widget keys) ----------


def _on_preset() -> None:
    if ss.sb_preset != CUSTOM:
        _seed(*specs.preset(ss.sb_preset).copy(), preset=ss.sb_preset)


def _on_field() -> None:
    """Any edit that leaves the preset's spec or config makes the Preset box say "custom"."""
    if ss.sb_preset != CUSTOM and not _is_preset(ss.sb_preset, *_read()):
        ss.sb_preset = CUSTOM


def encode_for_url(spec: specs.ModelSpec, config: specs.TrainConfig) -> str:
    raw = zlib.compress(specs.bundle_json(spec, config).encode(), 9)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_from_url(text: str) -> tuple[specs.ModelSpec, specs.TrainConfig | None]:
    """The spec and config a URL carries; LabError for anything else (checked as data, bounded)."""
    if len(text) > MAX_URL_SPEC:
        raise LabError(f"the spec in this link is {len(text):,} characters, over the limit of {MAX_URL_SPEC:,}")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        inflater = zlib.decompressobj()
        bundle = inflater.decompress(raw, 64 * 1024)
        if inflater.unconsumed_tail:
            raise LabError("the spec in this link unpacks to more than 64 KB")
    except (binascii.Error, ValueError, zlib.error):
        raise LabError("the spec in this link is not readable (cut short or changed?)") from None
    return _fits_the_sidebar(*specs.parse_bundle(bundle))


def _fits_the_sidebar(spec: specs.ModelSpec, config: specs.TrainConfig | None):
    """Refuse what the sidebar's boxes could not show (a box would silently clamp it to another value)."""
    if config is not None and config.batch_size > MAX_BATCH:
        raise LabError(f"batch_size {config.batch_size:,} is over the sidebar's limit of {MAX_BATCH:,}")
    return spec, config


def _is_preset(name: str, spec: specs.ModelSpec, config: specs.TrainConfig) -> bool:
    return specs.bundle_json(*specs.preset(name).copy()) == specs.bundle_json(spec, config)


def _preset_equal_to(spec: specs.ModelSpec, config: specs.TrainConfig) -> str:
    """The preset with exactly this spec and config, so a reloaded or shared preset still names itself."""
    return next((name for name in specs.PRESETS if _is_preset(name, spec, config)), CUSTOM)


def _initial() -> tuple[specs.ModelSpec, specs.TrainConfig, str | None]:
    """What the widgets start from: this session's last spec, else the link's, else the default preset."""
    stored = ss.get("train_bundle")
    if stored:
        return *specs.parse_bundle(stored), ss.get("train_preset", CUSTOM)
    if text := st.query_params.get(URL_PARAM):
        try:
            spec, config = decode_from_url(text)
            config = config or specs.preset(DEFAULT_PRESET).config
            return spec, config, _preset_equal_to(spec, config)
        except LabError as exc:
            ss.sb_import_error = f"link: {exc}; showing the default preset instead"
    return *specs.preset(DEFAULT_PRESET).copy(), DEFAULT_PRESET


def _edit(change) -> None:
    """Apply a structural change (add/remove a layer, switch type) to the current spec and re-seed the widgets."""
    spec, config = _read()
    change(spec)
    _seed(spec, config, ss.sb_preset)


def _on_kind(spec: specs.ModelSpec) -> None:
    if spec.kind == "cnn" and not spec.conv_blocks:
        spec.conv_blocks = [specs.ConvBlock(32, 3)]


def _on_import() -> None:
    ss.sb_import_error = ""
    upload = ss.get("sb_import")
    if upload is None:
        return
    try:
        spec, config = _fits_the_sidebar(*specs.parse_bundle(upload.getvalue()))
    except LabError as exc:
        ss.sb_import_error = f"{markdown_literal(upload.name)}: {exc}"
        return
    _seed(spec, config or _read()[1])


# ---------- widgets ----------


def _conv_controls(i: int) -> None:
    with st.expander(f"Conv block {i + 1}", expanded=True):
        a, b = st.columns(2)
        a.number_input("filters", 1, 1024, step=8, key=f"sb_c{i}_filters", on_change=_on_field)
        b.selectbox("kernel", list(range(1, 10)), key=f"sb_c{i}_kernel", on_change=_on_field)
        a.selectbox("activation", specs.ACTIVATIONS, key=f"sb_c{i}_activation", on_change=_on_field)
        b.selectbox("padding", specs.PADDINGS, key=f"sb_c{i}_padding", on_change=_on_field)
        a.selectbox("pooling", specs.POOLINGS, key=f"sb_c{i}_pooling", on_change=_on_field)
        b.checkbox("batch-norm", key=f"sb_c{i}_bn", on_change=_on_field)
        st.slider("dropout", 0.0, 0.9, step=0.05, key=f"sb_c{i}_dropout", on_change=_on_field)
        st.button("Remove block", key=f"sb_c{i}_remove", disabled=ss.sb_n_conv <= 1,
                  on_click=_edit, args=(lambda s: s.conv_blocks.pop(i),))


def _dense_controls(i: int) -> None:
    with st.expander(f"Dense layer {i + 1}", expanded=True):
        a, b = st.columns(2)
        a.number_input("units", 1, 8192, step=16, key=f"sb_d{i}_units", on_change=_on_field)
        b.selectbox("activation", specs.ACTIVATIONS, key=f"sb_d{i}_activation", on_change=_on_field)
        st.slider("dropout", 0.0, 0.9, step=0.05, key=f"sb_d{i}_dropout", on_change=_on_field)
        st.button("Remove layer", key=f"sb_d{i}_remove", on_click=_edit, args=(lambda s: s.dense_layers.pop(i),))


def spec_editor() -> tuple[specs.ModelSpec, specs.TrainConfig, str | None]:
    """Draw the sidebar; return the spec and config it describes and the preset they equal (or None)."""
    if "sb_kind" not in ss:  # first visit, a reload, or back from another page: widgets forgot their values
        spec, config, preset = _initial()
        _seed(spec, config, preset)
    with st.sidebar:
        st.header("Model")
        st.selectbox("Preset", [*specs.PRESETS, CUSTOM], key="sb_preset", on_change=_on_preset,
                     help="Load a known architecture and recipe; any edit afterwards makes it custom.")
        st.radio("Model type", specs.KINDS, format_func=str.upper, horizontal=True, key="sb_kind",
                 on_change=_edit, args=(_on_kind,))
        if ss.sb_kind == "cnn":
            for i in range(ss.sb_n_conv):
                _conv_controls(i)
            st.button("Add conv block", on_click=_edit,
                      args=(lambda s: s.conv_blocks.append(specs.ConvBlock(64, 3)),))
        for i in range(ss.sb_n_dense):
            _dense_controls(i)
        st.button("Add dense layer", on_click=_edit, args=(lambda s: s.dense_layers.append(specs.DenseLayer()),))

        st.header("Training")
        a, b = st.columns(2)
        a.selectbox("optimizer", specs.OPTIMIZERS, key="sb_optimizer", on_change=_on_field)
        b.number_input("learning rate", 1e-5, 1.0, step=1e-4, format="%.5f", key="sb_lr", on_change=_on_field)
        a.number_input("batch size", 1, MAX_BATCH, step=32, key="sb_batch", on_change=_on_field)
        b.number_input("epochs", 1, specs.MAX_EPOCHS, key="sb_epochs", on_change=_on_field)
        a.number_input("seed", 0, 2**31 - 1, key="sb_seed", on_change=_on_field)
        b.slider("validation split", 0.0, 0.5, step=0.05, key="sb_val", on_change=_on_field)
        with st.expander("Schedule, early stopping, augmentation"):
            st.selectbox("learning-rate schedule", specs.SCHEDULES, key="sb_schedule", on_change=_on_field)
            st.slider("warm-up fraction", 0.0, 0.9, step=0.05, key="sb_warmup", on_change=_on_field)
            if "patience" in specs.TrainConfig.__dataclass_fields__:
                st.number_input("early-stopping patience (epochs, 0 = off)", 0, specs.MAX_EPOCHS, key="sb_patience",
                                on_change=_on_field, help="Stop when validation loss has not improved for this many "
                                "epochs, and keep the best epoch's weights. Needs a validation split.")
            st.selectbox("Augmentation", specs.AUGMENT_LEVELS, key="sb_augment", on_change=_on_field,
                         format_func=AUGMENT_WORDS.get,
                         help="How the training images are varied each epoch (mnist_core/augment.py).")
            st.number_input("adversarial training eps (0 = off)", 0.0, specs.MAX_ADVERSARIAL_EPS, step=0.05,
                            format="%.3f", key="sb_adversarial_eps", on_change=_on_field,
                            help="Half of every batch is attacked by FGSM at this eps (0-1 pixel units) against the "
                            "current weights: more robust to small adversarial changes, about 1.3x slower per step.")

        spec, config = _read()
        st.header("Spec file")
        st.file_uploader("Import spec JSON", type=["json"], key="sb_import", on_change=_on_import, max_upload_size=1)
        if ss.get("sb_import_error"):
            st.error(ss.sb_import_error)
        st.download_button("Export spec JSON", specs.bundle_json(spec, config),
                           file_name=f"{spec.describe()}.json", mime="application/json")

    preset = ss.sb_preset if ss.sb_preset != CUSTOM else None
    if preset and not _is_preset(preset, spec, config):
        preset = None  # edited since the preset was loaded
    ss.train_bundle, ss.train_preset = specs.bundle_json(spec, config), ss.sb_preset
    encoded = encode_for_url(spec, config)
    if st.query_params.get(URL_PARAM) != encoded:
        st.query_params[URL_PARAM] = encoded
    return spec, config, preset
