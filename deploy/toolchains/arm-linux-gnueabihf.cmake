# Cross build for 32-bit Raspberry Pi OS / Debian armhf (ARMv7 with VFPv3-D16: Raspberry Pi 2,
# 3, 4, 5 and Zero 2 W on a 32-bit OS; not the ARMv6 Pi 1 and Zero/Zero W):
#   cmake -S . -B build-cross/armhf -DCMAKE_TOOLCHAIN_FILE=deploy/toolchains/arm-linux-gnueabihf.cmake \
#         -DIOTGW_SYSROOT=build-cross/armhf/sysroot
# Needs gcc-arm-linux-gnueabihf, qemu-user-static and the armhf -dev packages (sysroot or
# multiarch); deploy/cross-build armhf sets all of it up. See debian-cross.cmake.
set(IOTGW_TRIPLET arm-linux-gnueabihf)
set(IOTGW_CPU arm)
set(IOTGW_QEMU qemu-arm-static)
include(${CMAKE_CURRENT_LIST_DIR}/debian-cross.cmake)
