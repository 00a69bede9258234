"""ComfyUI workflow templates: API-format JSON files with named bindings, checked when the bot starts.

A template is a graph exported with ComfyUI's "Save (API Format)": ``{"3": {"class_type": "KSampler",
"inputs": {...}}, ...}``. Config binds the values the bot fills in to node inputs:

    bindings = { prompt = "6.text", negative = "7.text", seed = "3.seed", width = "5.width",
                 height = "5.height", steps = "3.steps", cfg = "3.cfg", batch = "5.batch_size" }

A reference is ``NODE.input`` where NODE is a node id or a node's title (``_meta.title``, which
survives re-exporting the graph while ids may not). Every binding is checked at start: a missing
file, a UI-format export, an unknown node or input, an input wired to another node, a number
slot holding text: each stops the bot with a message naming the file, the node and the binding,
instead of failing at a user's first prompt.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.errors import ConfigError

#: What the bot can fill in, and what each means.
BINDINGS: dict[str, str] = {
    "prompt": "the prompt text",
    "negative": "the negative prompt text",
    "seed": "the seed",
    "width": "the image width",
    "height": "the image height",
    "steps": "sampling steps (--steps)",
    "cfg": "guidance scale (--cfg)",
    "batch": "images per call",
    "image": "the uploaded input image (a LoadImage node's image)",
    "denoise": "how far image-to-image moves from the input (--strength)",
}
NUMERIC = frozenset({"seed", "width", "height", "steps", "cfg", "batch", "denoise"})


@dataclass(frozen=True, slots=True)
class Slot:
    """One bound input: node id and input name."""

    node: str
    input: str


@dataclass(frozen=True)
class Workflow:
    """A checked template; ``fill`` makes the graph for one call."""

    path: Path
    graph: Mapping[str, Any]
    slots: Mapping[str, Slot]
    #: Node whose images are the result; None: every output node's images.
    output: str | None = None

    def has(self, binding: str) -> bool:
        return binding in self.slots

    def value(self, binding: str) -> Any:
        slot = self.slots[binding]
        return self.graph[slot.node]["inputs"][slot.input]

    def fill(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of the graph with each bound value set (unbound names are ignored)."""
        graph: dict[str, Any] = copy.deepcopy(dict(self.graph))
        for name, value in values.items():
            slot = self.slots.get(name)
            if slot is not None:
                graph[slot.node]["inputs"][slot.input] = value
        return graph


def load_workflow(
    path: str,
    bindings: Mapping[str, str],
    *,
    key: str,
    required: Collection[str] = ("prompt",),
    output: str | None = None,
) -> Workflow:
    """Read and check a template; ``ConfigError`` naming ``key``, the file, node and binding otherwise."""
    file = Path(path)
    graph = _read(file, key)
    for name in required:
        if name not in bindings:
            raise ConfigError(f"{key}: {file} needs a binding for {name} ({BINDINGS[name]}), "
                              f'e.g. {name} = "NODE.input"')
    if ("width" in bindings) != ("height" in bindings):
        raise ConfigError(f"{key}: bind both width and height, or neither")
    slots = {name: _slot(graph, file, key, name, ref) for name, ref in bindings.items()}
    output_node = _node(graph, file, f"{key} output", output) if output else None
    return Workflow(path=file, graph=graph, slots=slots, output=output_node)


def _read(file: Path, key: str) -> dict[str, Any]:
    try:
        graph = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{key}: the workflow file {file} does not exist "
                          f"(relative paths start in {Path.cwd()})") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"{key}: {file} is not a readable JSON file ({exc})") from None
    if isinstance(graph, dict) and isinstance(graph.get("nodes"), list):
        raise ConfigError(f"{key}: {file} is a ComfyUI UI workflow; export it with \"Save (API Format)\" "
                          "(turn on the dev mode options in ComfyUI's settings to see it)")
    if not isinstance(graph, dict) or not graph:
        raise ConfigError(f"{key}: {file} is not an API-format workflow (a JSON object of nodes)")
    for node_id, node in graph.items():
        if not (isinstance(node, dict) and isinstance(node.get("class_type"), str)
                and isinstance(node.get("inputs"), dict)):
            raise ConfigError(f"{key}: node '{node_id}' in {file} has no class_type and inputs: "
                              "is this an API-format export?")
    return graph


def _slot(graph: Mapping[str, Any], file: Path, key: str, name: str, ref: str) -> Slot:
    where = f"{key}.{name}"
    if name not in BINDINGS:
        raise ConfigError(f"{where}: unknown binding (known: {', '.join(BINDINGS)})")
    node_ref, dot, input_name = ref.rpartition(".")
    if not dot or not node_ref or not input_name:
        raise ConfigError(f'{where}: "{ref}" should be "NODE.input", e.g. "3.seed" or "KSampler.seed"')
    node_id = _node(graph, file, where, node_ref)
    node = graph[node_id]
    inputs = node["inputs"]
    label = f"node '{node_id}' ({node['class_type']}) in {file}"
    if input_name not in inputs:
        raise ConfigError(f"{where}: {label} has no input '{input_name}' (it has: {', '.join(inputs)})")
    value = inputs[input_name]
    if isinstance(value, list):
        raise ConfigError(f"{where}: input '{input_name}' of {label} is wired to node '{value[0]}'; "
                          "bind the node that holds the value")
    if name in NUMERIC and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise ConfigError(f"{where}: input '{input_name}' of {label} holds {value!r}, not a number")
    if name in ("prompt", "negative", "image") and not isinstance(value, str):
        raise ConfigError(f"{where}: input '{input_name}' of {label} holds {value!r}, not text")
    return Slot(node_id, input_name)


def _node(graph: Mapping[str, Any], file: Path, where: str, ref: str) -> str:
    """A node id from an id or a unique ``_meta.title``."""
    if ref in graph:
        return ref
    titled = [nid for nid, node in graph.items() if (node.get("_meta") or {}).get("title") == ref]
    if len(titled) == 1:
        return titled[0]
    if titled:
        raise ConfigError(f"{where}: the title '{ref}' names several nodes in {file} "
                          f"({', '.join(titled)}); use a node id")
    listing = ", ".join(f"{nid} {node['class_type']}" for nid, node in list(graph.items())[:12])
    raise ConfigError(f"{where}: there is no node '{ref}' in {file} (nodes: {listing})")
