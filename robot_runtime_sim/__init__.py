"""Simulator side of the swarm: VMAS scenarios served to robot nodes over ROS 2 topics."""
