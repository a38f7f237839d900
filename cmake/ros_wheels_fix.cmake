# Injected with -DCMAKE_PROJECT_INCLUDE=<this file> when building against ROS 2 from PyPI wheels.
#
# The wheels' exported CMake targets (share/<pkg>/cmake/export_*__rosidl_generator_pyExport.cmake)
# name include directories of the machine they were built on, /opt/python/cp3XX-cp3XX/..., and
# CMake refuses imported targets whose include directories do not exist. This hook runs after the
# project's find_package() calls and points those entries at this interpreter's Python and NumPy
# headers. It edits nothing on disk; on a ROS install from apt it finds nothing to rewrite.
function(_spa3r_fix_wheel_include_dirs)
  find_package(Python3 COMPONENTS Interpreter Development NumPy QUIET)
  get_property(_targets DIRECTORY "${CMAKE_SOURCE_DIR}" PROPERTY IMPORTED_TARGETS)
  set(_rewritten 0)
  foreach(_target IN LISTS _targets)
    get_target_property(_dirs ${_target} INTERFACE_INCLUDE_DIRECTORIES)
    if(NOT _dirs OR NOT "${_dirs}" MATCHES "/opt/python/")
      continue()
    endif()
    set(_fixed "")
    foreach(_dir IN LISTS _dirs)
      if(_dir MATCHES "^/opt/python/.*numpy")
        list(APPEND _fixed ${Python3_NumPy_INCLUDE_DIRS})
      elseif(_dir MATCHES "^/opt/python/")
        list(APPEND _fixed ${Python3_INCLUDE_DIRS})
      else()
        list(APPEND _fixed "${_dir}")
      endif()
    endforeach()
    list(REMOVE_DUPLICATES _fixed)
    set_target_properties(${_target} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${_fixed}")
    math(EXPR _rewritten "${_rewritten} + 1")
  endforeach()
  if(_rewritten GREATER 0)
    message(STATUS "ros_wheels_fix: rewrote /opt/python include dirs of ${_rewritten} imported targets")
  endif()
endfunction()

cmake_language(DEFER DIRECTORY "${CMAKE_SOURCE_DIR}" CALL _spa3r_fix_wheel_include_dirs)
