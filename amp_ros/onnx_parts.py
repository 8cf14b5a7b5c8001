"""Parts of the two-stream network exported to ONNX and run by onnxruntime: faster on the CPU.

Two parts take most of the network's time and have a plain convolutional graph: the motion
stream and a U²-Net(p) appearance trunk. ``amp-ship`` exports them beside the checkpoint's
weights (:func:`export_parts`, once: about half a minute) and the config records each file's
sha256 and the weights they were exported from (verified by :mod:`amp_ros.checkpoint`). On the
CPU the pipeline runs a copy of the network in which those parts are :class:`OnnxPart` stand-ins
(:func:`with_onnx_parts`); the rest (projections, fusion, dilated trunk) stays in torch. The
graphs are exported from the torch modules, so they compute the same functions (the head
features agree within 3e-4, test/test_onnx_parts.py); docs/benchmarks.md measures the speed.
"""

from __future__ import annotations

import copy
import importlib.util
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from amp_ros.atomic_write import atomic_path

MIN_SIDE = 2  # the smallest input side the exported graphs accept; smaller inputs use torch
INPUT = "input"  # the graphs' one input


def onnx_parts(network: nn.Module, with_trunk: bool = True) -> dict[str, tuple[nn.Module, str]]:
    """The exportable parts of ``network``: name → (module, the method the network calls);
    ``with_trunk`` False leaves the appearance trunk out."""
    parts = {"motion": (network.motion, "forward")}
    trunk = getattr(network.appearance, "trunk", None)
    if with_trunk and hasattr(trunk, "features"):  # U²-Net(p)
        parts["appearance"] = (trunk, "features")
    return parts


def part_file(name: str) -> str:
    """The file a part is exported to, in the checkpoint folder."""
    return f"{name}.onnx"


class _Flat(nn.Module):
    """One method of a part as a plain forward with a flat tuple output, for the exporter."""

    def __init__(self, module: nn.Module, method: str):
        super().__init__()
        self.module, self.method = module, method

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(_flatten(getattr(self.module, self.method)(x)))


def _flatten(output) -> list[torch.Tensor]:
    if isinstance(output, torch.Tensor):
        return [output]
    return [t for item in output for t in _flatten(item)]


def export_parts(network: nn.Module, directory: str | Path, with_trunk: bool = True) -> dict[str, Path]:
    """Export every part of ``network`` (:func:`onnx_parts`) to ``directory`` (graphs for any
    input size), each file written atomically; returns name → path."""
    paths = {}
    height = torch.export.Dim("height", min=MIN_SIDE, max=8192)
    width = torch.export.Dim("width", min=MIN_SIDE, max=8192)
    for name, (module, method) in onnx_parts(network, with_trunk).items():
        path = Path(directory) / part_file(name)
        flat = _Flat(module, method).cpu().eval()
        with torch.no_grad(), atomic_path(path) as tmp:
            torch.onnx.export(flat, (torch.zeros(1, 3, 180, 320),), str(tmp), dynamo=True,
                              input_names=[INPUT], verbose=False, external_data=False,
                              dynamic_shapes={"x": {2: height, 3: width}})
            _strip_metadata(tmp)
        paths[name] = path
    return paths


def _strip_metadata(path: Path) -> None:
    """Drop the exporter's per-node metadata (Python stack traces naming this machine's folders);
    the graph and its weights are untouched."""
    import onnx

    model = onnx.load(str(path))
    graphs = [model.graph]
    while graphs:
        graph = graphs.pop()
        del graph.metadata_props[:]
        for node in graph.node:
            del node.metadata_props[:]
            graphs += [a.g for a in node.attribute if a.type == onnx.AttributeProto.GRAPH]
    for function in model.functions:
        for node in function.node:
            del node.metadata_props[:]
    onnx.save(model, str(path))


class OnnxPart(nn.Module):
    """Stand-in for a part: its method computed by onnxruntime on the CPU, same outputs.

    The session uses as many threads as torch does (``torch.get_num_threads()`` at each call; a
    new session when that changes) and does not spin between calls, so it leaves the cores to
    the CRF worker and torch. Inputs smaller than the graph allows go to the torch ``fallback``.
    """

    def __init__(self, onnx_path: str | Path, fallback: nn.Module, method: str):
        super().__init__()
        self.onnx_path = Path(onnx_path)
        self.fallback = fallback
        self.method = method
        self._session = None
        self.threads: int | None = None  # the intra-op threads of the current session

    def _session_for(self, threads: int):
        """The onnxruntime session, made anew when ``threads`` differs from the current one's."""
        if self._session is None or threads != self.threads:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            self._session = ort.InferenceSession(str(self.onnx_path), options,
                                                 providers=["CPUExecutionProvider"])
            self.threads = threads
        return self._session

    def _run(self, x: torch.Tensor):
        if min(x.shape[-2:]) < MIN_SIDE:
            return getattr(self.fallback, self.method)(x)
        image = np.ascontiguousarray(x.detach().float().cpu().numpy())
        session = self._session_for(torch.get_num_threads())
        outputs = [torch.from_numpy(o) for o in session.run(None, {INPUT: image})]
        if self.method == "features":  # U²-Net: (features at strides 2, 4, 8, 16), saliency
            return outputs[:-1], outputs[-1]
        return outputs

    def forward(self, x: torch.Tensor):
        """The part's forward, e.g. the motion stream's three feature maps."""
        return self._run(x)

    def features(self, x: torch.Tensor):
        """A U²-Net trunk's ``features``: decoder features at strides 2, 4, 8, 16 and saliency."""
        return self._run(x)


def with_onnx_parts(network: nn.Module, paths: dict[str, Path]) -> nn.Module | None:
    """A copy of ``network`` in which the parts named in ``paths`` run on onnxruntime (their torch
    modules are the fallbacks; ``network`` itself is left as it is); None, with a warning, when
    onnxruntime is not installed."""
    if importlib.util.find_spec("onnxruntime") is None:
        warnings.warn("onnxruntime is not installed, so the whole network runs in torch (slower on "
                      "the CPU): pip install the onnxruntime that requirements.txt pins", stacklevel=2)
        return None
    parts = onnx_parts(network)
    unknown = set(paths) - set(parts)
    if unknown:
        raise ValueError(f"no such parts in a {network.config.appearance!r} network: {sorted(unknown)}")
    memo = {id(module): nn.Identity() for name, (module, _) in parts.items() if name in paths}
    onnx_network = copy.deepcopy(network, memo)  # the replaced parts are not copied
    for name, path in paths.items():
        module, method = parts[name]
        stand_in = OnnxPart(path, fallback=module, method=method)
        if name == "motion":
            onnx_network.motion = stand_in
        else:
            onnx_network.appearance.trunk = stand_in
    return onnx_network


__all__ = ["OnnxPart", "export_parts", "onnx_parts", "part_file", "with_onnx_parts"]
