"""amp_ros: online video object segmentation with Adaptive Masked Proxies (AMP).

The method (proxies, heads, network, flow, CRF, pipeline) imports torch, numpy and OpenCV
only; the ROS 2 node lives in :mod:`amp_ros.ros` and is imported only when used.
"""

__version__ = "0.1.0"
