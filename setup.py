"""pip set-up for amp_ros (make venv: pip install -e .); colcon builds it with CMakeLists.txt.

The console scripts are declared once, in setup.cfg (read by both).
"""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "amp_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"]),
    package_data={PACKAGE: ["models/DEFAULT", "models/*/*.json", "models/*/*.safetensors",
                            "models/*/*.onnx"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.xml")),
    ],
    python_requires=">=3.10",
    install_requires=["setuptools"],
    zip_safe=False,
    maintainer="amp_ros developers",
    maintainer_email="amp_ros@example.org",
    description="Online video object segmentation with Adaptive Masked Proxies, as a ROS 2 node",
    license="Apache-2.0",
)
