"""Static checks of launch/vos.launch.py, launch/two_cameras.launch.py and config/vos.yaml.

The ROS 2 ``launch`` packages are not installable from PyPI here, so the launch files are checked
as source: parsed with ``ast``, never imported. config/vos.yaml must declare exactly the node's
parameters with the node's defaults (and types: rcl refuses an int for a float parameter), under
the ``/**`` key (any node name and namespace).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LAUNCH_FILE = REPO / "launch" / "vos.launch.py"
TWO_CAMERAS = REPO / "launch" / "two_cameras.launch.py"
CONFIG_FILE = REPO / "config" / "vos.yaml"


@pytest.fixture(scope="module")
def tree() -> ast.Module:
    return ast.parse(LAUNCH_FILE.read_text(), filename=str(LAUNCH_FILE))


def _calls(tree: ast.AST, name: str) -> list[ast.Call]:
    """Every call of ``name(...)`` or ``something.name(...)``."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if called == name:
                found.append(node)
    return found


def _keyword(call: ast.Call, name: str) -> ast.expr:
    for keyword in call.keywords:
        if keyword.arg == name:
            return keyword.value
    raise AssertionError(f"{ast.unparse(call.func)}(...) has no {name}= argument")


def _strings(node: ast.AST) -> list[str]:
    return [n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def _declared(tree: ast.AST) -> dict[str, ast.Call]:
    """Every DeclareLaunchArgument by argument name."""
    return {ast.literal_eval(call.args[0]): call for call in _calls(tree, "DeclareLaunchArgument")}


def _share_path_calls(node: ast.AST) -> list[list[str]]:
    """The string parts of every os.path.join(...) below ``node``."""
    return [_strings(call) for call in _calls(node, "join")]


def test_launch_file_defines_generate_launch_description(tree: ast.Module) -> None:
    """The entry point `ros2 launch` calls exists and returns a LaunchDescription."""
    functions = {f.name: f for f in tree.body if isinstance(f, ast.FunctionDef)}
    assert "generate_launch_description" in functions
    assert _calls(functions["generate_launch_description"], "LaunchDescription")


@pytest.mark.parametrize("path", [LAUNCH_FILE, TWO_CAMERAS], ids=lambda p: p.name)
def test_launch_file_imports_only_launch_packages(path: Path) -> None:
    """Declarative: launch, launch_ros, the ament index and os; no eval/exec."""
    tree = ast.parse(path.read_text(), filename=str(path))
    modules = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            modules.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            modules.update(alias.name.split(".")[0] for alias in node.names)
    assert modules <= {"os", "launch", "launch_ros", "ament_index_python"}, modules
    assert not _calls(tree, "eval") and not _calls(tree, "exec")


def test_node_action_runs_vos_node_of_amp_ros(tree: ast.Module) -> None:
    """One Node action: package amp_ros, executable vos_node, named amp_vos."""
    (node,) = _calls(tree, "Node")
    assert ast.literal_eval(_keyword(node, "package")) == "amp_ros"
    assert ast.literal_eval(_keyword(node, "executable")) == "vos_node"
    assert ast.literal_eval(_keyword(node, "name")) == "amp_vos"
    shares = _calls(tree, "get_package_share_directory")
    assert shares and {ast.literal_eval(share.args[0]) for share in shares} == {"amp_ros"}


def test_node_loads_the_params_file_default_config_vos_yaml(tree: ast.Module) -> None:
    """The parameters come first from the params_file argument, whose default is
    <share>/config/vos.yaml; use_sim_time follows its argument as a bool."""
    (node,) = _calls(tree, "Node")
    parameters = _keyword(node, "parameters")
    assert isinstance(parameters, ast.List)
    (first,) = _calls(parameters.elts[0], "LaunchConfiguration")
    assert ast.literal_eval(first.args[0]) == "params_file"
    declared = _declared(tree)
    assert _share_path_calls(_keyword(declared["params_file"], "default_value")) == [["config", "vos.yaml"]]
    sim_time = next(value for mapping in ast.walk(parameters) if isinstance(mapping, ast.Dict)
                    for key, value in zip(mapping.keys, mapping.values)
                    if isinstance(key, ast.Constant) and key.value == "use_sim_time")  # fmt: skip
    assert ast.unparse(_keyword(sim_time, "value_type")) == "bool"
    assert ast.literal_eval(_keyword(declared["use_sim_time"], "default_value")) == "false"


def test_node_takes_its_namespace_from_the_namespace_argument(tree: ast.Module) -> None:
    """namespace:=cam1 puts the node (and its services, topics, state) under /cam1; default root."""
    (node,) = _calls(tree, "Node")
    (namespace,) = _calls(_keyword(node, "namespace"), "LaunchConfiguration")
    assert ast.literal_eval(namespace.args[0]) == "namespace"
    assert ast.literal_eval(_keyword(_declared(tree)["namespace"], "default_value")) == ""


def test_empty_override_arguments_keep_the_params_file(tree: ast.Module) -> None:
    """checkpoint, device and image_transport default to "" = not passed (the params file's value
    stays), every declared argument is described."""
    declared = _declared(tree)
    functions = {f.name: f for f in tree.body if isinstance(f, ast.FunctionDef)}
    overrides = next(n for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "OVERRIDES")
    names = ast.literal_eval(overrides.value)
    assert set(names) == {"checkpoint", "device", "image_transport"}
    for name in names:
        assert ast.literal_eval(_keyword(declared[name], "default_value")) == ""
    assert "if value:" in ast.unparse(functions["_node"])
    assert {"namespace", "params_file", "use_sim_time", "image", "flow"} <= set(declared)
    for name, call in declared.items():
        assert ast.literal_eval(_keyword(call, "description")).strip(), name


def test_two_cameras_include_vos_launch_in_two_namespaces() -> None:
    """two_cameras.launch.py includes vos.launch.py once per camera, each in a scoped group with
    its own namespace and image topic, sharing params_file and use_sim_time."""
    tree = ast.parse(TWO_CAMERAS.read_text(), filename=str(TWO_CAMERAS))
    cameras = ast.literal_eval(next(n for n in tree.body if isinstance(n, ast.Assign)
                                    and n.targets[0].id == "CAMERAS").value)  # fmt: skip
    assert cameras == ("cam1", "cam2")
    (include,) = _calls(tree, "IncludeLaunchDescription")
    assert _calls(tree, "GroupAction") and include in list(ast.walk(_calls(tree, "GroupAction")[0]))
    (source,) = _calls(tree, "PythonLaunchDescriptionSource")
    assert _share_path_calls(source) == [["launch", "vos.launch.py"]]
    arguments = _keyword(include, "launch_arguments")
    keys = {ast.literal_eval(k) for d in ast.walk(arguments) if isinstance(d, ast.Dict) for k in d.keys}
    assert {"namespace", "image", "params_file", "use_sim_time"} <= keys
    vos_arguments = set(_declared(ast.parse(LAUNCH_FILE.read_text())))
    assert keys <= vos_arguments, keys - vos_arguments


def test_node_remaps_image_and_flow(tree: ast.Module) -> None:
    """~/image and ~/flow are remapped to launch arguments that are declared."""
    (node,) = _calls(tree, "Node")
    remappings = _keyword(node, "remappings")
    assert isinstance(remappings, ast.List)
    pairs = {}
    for item in remappings.elts:
        assert isinstance(item, ast.Tuple) and len(item.elts) == 2
        pairs[ast.literal_eval(item.elts[0])] = item.elts[1]
    assert set(pairs) == {"~/image", "~/flow"}
    declared = {ast.literal_eval(call.args[0]) for call in _calls(tree, "DeclareLaunchArgument")}
    for target in pairs.values():
        (configuration,) = _calls(target, "LaunchConfiguration")
        assert ast.literal_eval(configuration.args[0]) in declared


def test_launch_file_selects_the_shm_profile(tree: ast.Module) -> None:
    """FASTDDS_DEFAULT_PROFILES_FILE points at <share>/config/fastdds_shm.xml (the transport
    measured best, README "Transport"), unless the user set it or FASTDDS_BUILTIN_TRANSPORTS."""
    settings = _calls(tree, "SetEnvironmentVariable")
    by_name = {ast.literal_eval(call.args[0]): call.args[1] for call in settings}
    assert list(by_name) == ["FASTDDS_DEFAULT_PROFILES_FILE"]
    assert _share_path_calls(by_name["FASTDDS_DEFAULT_PROFILES_FILE"]) == [["config", "fastdds_shm.xml"]]
    functions = {f.name: f for f in tree.body if isinstance(f, ast.FunctionDef)}
    transport = ast.unparse(functions["_transport"])
    assert "context.environment" in transport and "return []" in transport
    kept = next(n for n in tree.body
                if isinstance(n, ast.Assign) and n.targets[0].id == "TRANSPORT_VARIABLES")  # fmt: skip
    assert ast.literal_eval(kept.value) == ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTDDS_BUILTIN_TRANSPORTS")
    (launch,) = _calls(functions["generate_launch_description"], "LaunchDescription")
    opaque = [ast.unparse(_keyword(c, "function")) for c in _calls(launch, "OpaqueFunction")]
    assert opaque == ["_transport", "_node"]  # the variable is set before the node starts


def test_launched_files_exist_and_are_installed() -> None:
    """The files the launch file names exist and setup.py installs them into the share folder."""
    for path in ("config/vos.yaml", "config/fastdds_shm.xml", "launch/vos.launch.py",
                 "launch/two_cameras.launch.py"):  # fmt: skip
        assert (REPO / path).is_file(), path
    setup = ast.parse((REPO / "setup.py").read_text())
    patterns = _strings(setup)
    for pattern in ("config/*.yaml", "config/*.xml", "launch/*.launch.py"):
        assert pattern in patterns
    assert "install(DIRECTORY launch config DESTINATION share/${PROJECT_NAME})" in (
        REPO / "CMakeLists.txt").read_text()  # colcon build
    assert "vos_node = amp_ros.ros.node:main" in (REPO / "setup.cfg").read_text()


def test_vos_yaml_matches_the_node_parameters() -> None:
    """config/vos.yaml sets exactly the node's parameters, each to its default, of the same type."""
    yaml = pytest.importorskip("yaml")
    from amp_ros.ros.node_config import NODE_NAME, PARAMETERS

    config = yaml.safe_load(CONFIG_FILE.read_text())
    assert NODE_NAME == "amp_vos"
    assert list(config) == ["/**"]  # any node name and namespace (two cameras: /cam1/amp_vos, ...)
    assert list(config["/**"]) == ["ros__parameters"]
    values = config["/**"]["ros__parameters"]
    defaults = {item.name: item.default for item in PARAMETERS}
    assert sorted(set(defaults) - set(values)) == [], "missing in vos.yaml"
    assert sorted(set(values) - set(defaults)) == [], "unknown in vos.yaml"
    for name, default in defaults.items():
        assert values[name] == default, name
        assert type(values[name]) is type(default), f"{name}: {type(values[name])} vs {type(default)}"


def test_every_parameter_is_described_and_bounded() -> None:
    """Each parameter has a description; numbers have a (low, high) range holding the default,
    strings with fixed values list them (and the default is one)."""
    from amp_ros.ros.node_config import PARAMETERS

    free_strings = {"checkpoint", "state_dir"}  # a name or a path
    for item in PARAMETERS:
        assert item.description.strip(), item.name
        if isinstance(item.default, bool):
            assert item.limits is None, item.name
        elif isinstance(item.default, int | float):
            assert item.limits is not None and len(item.limits) == 2, item.name
            low, high = item.limits
            assert type(low) is type(high) is type(item.default), item.name
            assert low <= item.default <= high, item.name
        elif item.name in free_strings:
            assert item.limits is None, item.name
        else:
            assert item.choices and item.default in item.choices, item.name


def test_string_launch_arguments_stay_strings(tree: ast.Module) -> None:
    """Launch arguments passed as parameters are wrapped in ParameterValue with their type: str
    for the overrides (launch_ros would YAML-parse "123" into an int), bool for use_sim_time."""
    (node,) = _calls(tree, "Node")
    for mapping in ast.walk(_keyword(node, "parameters")):
        if not isinstance(mapping, ast.Dict):
            continue
        for key, value in zip(mapping.keys, mapping.values):
            if _calls(value, "LaunchConfiguration"):
                assert isinstance(value, ast.Call) and ast.unparse(value.func).endswith("ParameterValue"), (
                    f"{ast.literal_eval(key)}: {ast.unparse(value)}"
                )
                expected = "bool" if ast.literal_eval(key) == "use_sim_time" else "str"
                assert ast.unparse(_keyword(value, "value_type")) == expected
    functions = {f.name: f for f in tree.body if isinstance(f, ast.FunctionDef)}
    (override,) = [call for call in _calls(functions["_node"], "ParameterValue")
                   if not _calls(call, "LaunchConfiguration")]  # the overrides, already performed
    assert ast.unparse(_keyword(override, "value_type")) == "str"
