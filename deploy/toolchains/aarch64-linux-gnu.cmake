# Cross build for 64-bit Raspberry Pi OS / Debian arm64 (Raspberry Pi 3, 4, 5, Zero 2 W):
#   cmake -S . -B build-cross/arm64 -DCMAKE_TOOLCHAIN_FILE=deploy/toolchains/aarch64-linux-gnu.cmake
# Needs gcc-aarch64-linux-gnu, qemu-user-static and the arm64 -dev packages (multiarch) or
# IOTGW_SYSROOT; deploy/cross-build arm64 sets all of it up. See debian-cross.cmake.
set(IOTGW_TRIPLET aarch64-linux-gnu)
set(IOTGW_CPU aarch64)
set(IOTGW_QEMU qemu-aarch64-static)
include(${CMAKE_CURRENT_LIST_DIR}/debian-cross.cmake)
