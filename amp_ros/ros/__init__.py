"""The ROS 2 layer of amp_ros: the ``amp_vos`` node and the teach client (imports rclpy)."""
