"""ament_python package set-up for amp_ros (also a plain pip-installable package)."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "amp_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"]),
    package_data={PACKAGE: ["models/DEFAULT", "models/*/*.json", "models/*/*.safetensors"]},
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
    entry_points={
        "console_scripts": [
            "vos_node = amp_ros.ros.node:main",
            "amp-teach = amp_ros.ros.teach_client:main",
            "amp-bag = amp_ros.ros.bag_cli:main",
            "amp-eval = amp_ros.ros.eval_cli:main",
            "amp-train = amp_ros.training.train:main",
            "amp-bench = amp_ros.ros.bench_ros:main",
        ],
    },
)
