# Building against the ROS 2 PyPI wheels (no setup.bash sourced): shared by amp_interfaces's and
# amp_ros's CMakeLists.txt. Include it after find_package(Python3 ... Interpreter).
#
# amp_use_ros_wheels(): points CMAKE_PREFIX_PATH and AMENT_PREFIX_PATH at every Python prefix
# that holds an ament index (the venv, or pip's isolated build environment). rosidl finds the
# typesupports through the ament index at configure time.

macro(amp_use_ros_wheels)
  execute_process(
    COMMAND "${Python3_EXECUTABLE}" -c [=[
import os, sys
seen = []
for entry in sys.path:
    if not entry.endswith('site-packages'):
        continue
    prefix = os.path.dirname(os.path.dirname(os.path.dirname(entry)))
    if os.path.isdir(os.path.join(prefix, 'share', 'ament_index')) and prefix not in seen:
        seen.append(prefix)
print(';'.join(seen), end='')
]=]
    OUTPUT_VARIABLE _amp_ros_prefixes
    RESULT_VARIABLE _amp_result)
  if(NOT _amp_result EQUAL 0 OR _amp_ros_prefixes STREQUAL "")
    message(FATAL_ERROR
      "No ROS 2 prefix (share/ament_index) found on the sys.path of ${Python3_EXECUTABLE}; "
      "source a ROS 2 setup.bash, or install the ros-* wheels (amp_interfaces/build-requirements.txt)")
  endif()
  message(STATUS "${PROJECT_NAME}: ROS 2 prefixes from wheels: ${_amp_ros_prefixes}")
  list(PREPEND CMAKE_PREFIX_PATH ${_amp_ros_prefixes})
  if(DEFINED ENV{AMENT_PREFIX_PATH} AND NOT "$ENV{AMENT_PREFIX_PATH}" STREQUAL "")
    string(REPLACE ";" ":" _amp_ament_path "${_amp_ros_prefixes}:$ENV{AMENT_PREFIX_PATH}")
  else()
    string(REPLACE ";" ":" _amp_ament_path "${_amp_ros_prefixes}")
  endif()
  set(ENV{AMENT_PREFIX_PATH} "${_amp_ament_path}")
endmacro()

# Whether no ROS 2 environment is sourced (AMENT_PREFIX_PATH empty): then the wheels are used.
if(DEFINED ENV{AMENT_PREFIX_PATH} AND NOT "$ENV{AMENT_PREFIX_PATH}" STREQUAL "")
  set(AMP_NO_ROS_SOURCED OFF)
else()
  set(AMP_NO_ROS_SOURCED ON)
endif()
