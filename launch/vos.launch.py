"""Launch the amp_vos node with config/vos.yaml and the shared-memory Fast DDS profile."""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

from launch import LaunchDescription


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory("amp_ros")
    return LaunchDescription([
        DeclareLaunchArgument("image", default_value="/camera/image_raw",
                              description="camera topic (sensor_msgs/Image)"),
        DeclareLaunchArgument("flow", default_value="/camera/flow",
                              description="optical flow topic (32FC2), optional"),
        DeclareLaunchArgument("checkpoint", default_value="",
                              description="checkpoint folder; empty = the shipped model"),
        DeclareLaunchArgument("device", default_value="cpu", description="cpu | cuda | auto"),
        SetEnvironmentVariable("FASTDDS_DEFAULT_PROFILES_FILE",
                               os.path.join(share, "config", "fastdds_shm.xml")),
        Node(
            package="amp_ros",
            executable="vos_node",
            name="amp_vos",
            parameters=[
                os.path.join(share, "config", "vos.yaml"),
                # ParameterValue(str): launch_ros would YAML-parse "" (the default) into None.
                {"checkpoint": ParameterValue(LaunchConfiguration("checkpoint"), value_type=str),
                 "device": ParameterValue(LaunchConfiguration("device"), value_type=str)},
            ],
            remappings=[
                ("~/image", LaunchConfiguration("image")),
                ("~/flow", LaunchConfiguration("flow")),
            ],
            output="screen",
        ),
    ])
