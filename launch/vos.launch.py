"""Launch one amp_vos node: parameters from a params file, optional namespace, sim time, and the
Fast DDS transport amp_ros measured best for camera frames (README, "Transport") unless
FASTDDS_DEFAULT_PROFILES_FILE or FASTDDS_BUILTIN_TRANSPORTS is set already.

    ros2 launch amp_ros vos.launch.py image:=/camera/image_raw
    ros2 launch amp_ros vos.launch.py namespace:=cam1 image:=/cam1/image_raw params_file:=my.yaml

checkpoint, device and image_transport left empty keep the params file's values.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

from launch import LaunchContext, LaunchDescription

# Node parameters that a non-empty launch argument of the same name overrides.
OVERRIDES = ("checkpoint", "device", "image_transport")
# A Fast DDS transport the user chose already (either variable set, even empty) is kept.
TRANSPORT_VARIABLES = ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTDDS_BUILTIN_TRANSPORTS")


def _transport(context: LaunchContext) -> list[SetEnvironmentVariable]:
    """amp_ros's shared-memory profile for the processes launched after it (README "Transport":
    it delivered every 480p/1080p frame), unless the user chose a transport."""
    if any(name in context.environment for name in TRANSPORT_VARIABLES):
        return []
    share = get_package_share_directory("amp_ros")
    return [SetEnvironmentVariable("FASTDDS_DEFAULT_PROFILES_FILE",
                                   os.path.join(share, "config", "fastdds_shm.xml"))]


def _node(context: LaunchContext) -> list[Node]:
    """The node, with the overrides whose launch arguments are not empty."""
    overrides = {}
    for name in OVERRIDES:
        value = LaunchConfiguration(name).perform(context)
        if value:
            # ParameterValue(str): launch_ros would YAML-parse a value like "123" into an int.
            overrides[name] = ParameterValue(value, value_type=str)
    return [
        Node(
            package="amp_ros",
            executable="vos_node",
            name="amp_vos",
            namespace=LaunchConfiguration("namespace"),
            parameters=[
                LaunchConfiguration("params_file"),
                {"use_sim_time": ParameterValue(LaunchConfiguration("use_sim_time"), value_type=bool)},
                overrides,
            ],
            remappings=[
                ("~/image", LaunchConfiguration("image")),
                ("~/flow", LaunchConfiguration("flow")),
            ],
            output="screen",
            emulate_tty=True,
        )
    ]


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory("amp_ros")
    return LaunchDescription([
        DeclareLaunchArgument("namespace", default_value="",
                              description="namespace of the node (e.g. cam1: /cam1/amp_vos, "
                                          "/cam1/amp/teach); empty = the root"),
        DeclareLaunchArgument("params_file", default_value=os.path.join(share, "config", "vos.yaml"),
                              description="node parameters (YAML; its /** key fits any name)"),
        DeclareLaunchArgument("use_sim_time", default_value="false",
                              description="use /clock (true when replaying a bag with --clock)"),
        DeclareLaunchArgument("image", default_value="/camera/image_raw",
                              description="camera topic (sensor_msgs/Image; with "
                                          "image_transport:=compressed, <image>/compressed is read)"),
        DeclareLaunchArgument("flow", default_value="/camera/flow",
                              description="optical flow topic (32FC2), optional"),
        DeclareLaunchArgument("checkpoint", default_value="",
                              description="checkpoint folder or shipped model; empty = params file's"),
        DeclareLaunchArgument("device", default_value="",
                              description="cpu | cuda | auto; empty = params file's (cpu)"),
        DeclareLaunchArgument("image_transport", default_value="",
                              description="raw | compressed; empty = params file's (raw)"),
        OpaqueFunction(function=_transport),
        OpaqueFunction(function=_node),
    ])
