"""Two cameras, two amp_vos nodes side by side: vos.launch.py included in namespaces cam1 and cam2.

    ros2 launch amp_ros two_cameras.launch.py cam1_image:=/cam1/image_raw cam2_image:=/cam2/image_raw

gives /cam1/amp_vos and /cam2/amp_vos with their own services (/cam1/amp/teach, /cam2/amp/teach,
...), topics (/cam1/amp_vos/mask, ...), diagnostics names and state folders. Both read the same
params file (its /** key applies to each).
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, GroupAction, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration

from launch import LaunchDescription

CAMERAS = ("cam1", "cam2")


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory("amp_ros")
    vos = PythonLaunchDescriptionSource(os.path.join(share, "launch", "vos.launch.py"))
    arguments = [
        DeclareLaunchArgument("params_file", default_value=os.path.join(share, "config", "vos.yaml"),
                              description="parameters of both nodes"),
        DeclareLaunchArgument("use_sim_time", default_value="false"),
        DeclareLaunchArgument("image_transport", default_value="",
                              description="raw | compressed for both; empty = params file's"),
        DeclareLaunchArgument("device", default_value="", description="cpu | cuda | auto for both"),
    ]
    nodes = []
    for camera in CAMERAS:
        arguments.append(DeclareLaunchArgument(f"{camera}_image", default_value=f"/{camera}/image_raw",
                                               description=f"camera topic of {camera}"))
        # A scoped group: each include's launch arguments stay its own.
        nodes.append(GroupAction([
            IncludeLaunchDescription(vos, launch_arguments={
                "namespace": camera,
                "image": LaunchConfiguration(f"{camera}_image"),
                "flow": f"/{camera}/flow",
                "params_file": LaunchConfiguration("params_file"),
                "use_sim_time": LaunchConfiguration("use_sim_time"),
                "image_transport": LaunchConfiguration("image_transport"),
                "device": LaunchConfiguration("device"),
            }.items()),
        ]))
    return LaunchDescription([*arguments, *nodes])
