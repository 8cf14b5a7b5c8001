"""Tests for the amp_interfaces services (Teach, Forget): fields and an rclpy round trip."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import rclpy  # a hard dependency: missing ROS wheels must fail the suite, not skip it
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from ros_domains import domain
from sensor_msgs.msg import Image

# `make venv` builds amp_interfaces; a missing build fails here instead of skipping.
from amp_interfaces.srv import Forget, Teach
from amp_ros.ros.dds_env import dds_variables_applied
from amp_ros.ros.messages import image_msg

HEIGHT, WIDTH = 480, 854
DOMAIN_ID = str(domain("interfaces"))


def _fields(msg_type: type) -> dict[str, str]:
    return dict(msg_type.get_fields_and_field_types())


def test_teach_fields() -> None:
    """Teach carries image, mask and label in; success, message, class id and the stamp of the
    frame taught out."""
    assert _fields(Teach.Request) == {
        "image": "sensor_msgs/Image",
        "mask": "sensor_msgs/Image",
        "label": "string",
    }
    assert _fields(Teach.Response) == {
        "success": "boolean",
        "message": "string",
        "class_id": "int32",
        "stamp": "builtin_interfaces/Time",  # the stamp of the frame the mask was applied to
    }
    request = Teach.Request()
    assert isinstance(request.image, Image) and isinstance(request.mask, Image)
    assert request.image.width == 0 and request.image.height == 0  # empty = last frame
    assert request.label == ""
    response = Teach.Response()
    assert response.success is False and response.message == "" and response.class_id == 0


def test_forget_fields() -> None:
    """Forget takes a label and answers with success and a message."""
    assert _fields(Forget.Request) == {"label": "string"}
    assert _fields(Forget.Response) == {"success": "boolean", "message": "string"}


@pytest.fixture
def ros_context() -> Iterator[Context]:
    """Yield an isolated rclpy context on a private domain, with amp_ros's DDS environment."""
    with dds_variables_applied():
        context = Context()
        rclpy.init(context=context, domain_id=int(DOMAIN_ID))
        try:
            yield context
        finally:
            context.try_shutdown()


def test_service_round_trip(ros_context: Context) -> None:
    """A 480x854 rgb8 frame and mono8 mask reach a Teach server intact; Forget answers."""
    server = Node("amp_interfaces_test_server", context=ros_context)
    client_node = Node("amp_interfaces_test_client", context=ros_context)
    executor = SingleThreadedExecutor(context=ros_context)
    received: dict[str, object] = {}

    def on_teach(request: Teach.Request, response: Teach.Response) -> Teach.Response:
        image = np.frombuffer(request.image.data, np.uint8)
        mask = np.frombuffer(request.mask.data, np.uint8)
        received["image"] = image.reshape(request.image.height, request.image.width, 3)
        received["mask"] = mask.reshape(request.mask.height, request.mask.width)
        received["encodings"] = (request.image.encoding, request.mask.encoding)
        response.success = True
        response.message = f"learned {request.label}"
        response.class_id = 3
        return response

    def on_forget(request: Forget.Request, response: Forget.Response) -> Forget.Response:
        response.success = False
        response.message = f"unknown label {request.label!r}"
        return response

    try:
        server.create_service(Teach, "teach", on_teach)
        server.create_service(Forget, "forget", on_forget)
        teach = client_node.create_client(Teach, "teach")
        forget = client_node.create_client(Forget, "forget")
        executor.add_node(server)
        executor.add_node(client_node)

        rng = np.random.default_rng(0)
        frame = rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
        mask = np.zeros((HEIGHT, WIDTH), np.uint8)
        mask[100:200, 300:450] = 255
        request = Teach.Request(image=image_msg(frame, "rgb8"), mask=image_msg(mask, "mono8"), label="cup")

        assert teach.wait_for_service(timeout_sec=5.0)
        future = teach.call_async(request)
        executor.spin_until_future_complete(future, timeout_sec=5.0)
        assert future.done(), "Teach call timed out"
        response = future.result()
        assert (response.success, response.message, response.class_id) == (
            True,
            "learned cup",
            3,
        )
        assert received["encodings"] == ("rgb8", "mono8")
        np.testing.assert_array_equal(received["image"], frame)
        np.testing.assert_array_equal(received["mask"], mask)

        assert forget.wait_for_service(timeout_sec=5.0)
        future = forget.call_async(Forget.Request(label="mug"))
        executor.spin_until_future_complete(future, timeout_sec=5.0)
        assert future.done(), "Forget call timed out"
        assert future.result().success is False
        assert future.result().message == "unknown label 'mug'"
    finally:
        executor.shutdown()
        client_node.destroy_node()
        server.destroy_node()
