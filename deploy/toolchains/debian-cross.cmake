# Common part of the Debian cross toolchains (deploy/toolchains/<triplet>.cmake set
# IOTGW_TRIPLET and IOTGW_CPU, then include this file). Two ways to find the target's libraries:
#
# - multiarch (default): the Debian packages of the target architecture installed next to the
#   host's (dpkg --add-architecture arm64; apt-get install libcjson-dev:arm64 ...): headers
#   in /usr/include and /usr/include/<triplet>, libraries in /usr/lib/<triplet>;
# - a sysroot: IOTGW_SYSROOT (a -D or an environment variable) names a directory holding the
#   target's packages unpacked with dpkg -x (deploy/cross-build --sysroot makes one).
#
# Tests run under qemu-user (CMAKE_CROSSCOMPILING_EMULATOR): ctest -L unit works as natively.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR ${IOTGW_CPU})
set(CMAKE_C_COMPILER ${IOTGW_TRIPLET}-gcc)
set(CMAKE_LIBRARY_ARCHITECTURE ${IOTGW_TRIPLET})

# try_compile projects re-read this file: pass the sysroot on to them.
if(NOT DEFINED IOTGW_SYSROOT AND DEFINED ENV{IOTGW_SYSROOT})
    set(IOTGW_SYSROOT "$ENV{IOTGW_SYSROOT}")
endif()
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES IOTGW_SYSROOT IOTGW_TRIPLET IOTGW_CPU IOTGW_QEMU)

if(IOTGW_QEMU STREQUAL "")
    message(FATAL_ERROR "set IOTGW_QEMU in the toolchain file")
endif()
find_program(IOTGW_QEMU_BIN ${IOTGW_QEMU})
if(IOTGW_SYSROOT)
    set(CMAKE_SYSROOT "${IOTGW_SYSROOT}")
    set(CMAKE_FIND_ROOT_PATH "${IOTGW_SYSROOT}")
    set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
    set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
    set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
    set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
    # Libraries needed by the libraries we link (libssl by libpaho-mqtt3as, ...).
    string(APPEND CMAKE_EXE_LINKER_FLAGS_INIT
           " -Wl,-rpath-link,${IOTGW_SYSROOT}/lib/${IOTGW_TRIPLET}"
           " -Wl,-rpath-link,${IOTGW_SYSROOT}/usr/lib/${IOTGW_TRIPLET}")
    # qemu-user looks up the dynamic loader and every library under -L first.
    if(IOTGW_QEMU_BIN)
        set(CMAKE_CROSSCOMPILING_EMULATOR ${IOTGW_QEMU_BIN} -L ${IOTGW_SYSROOT})
    endif()
    set(ENV{PKG_CONFIG_SYSROOT_DIR} "${IOTGW_SYSROOT}")
    set(ENV{PKG_CONFIG_LIBDIR}
        "${IOTGW_SYSROOT}/usr/lib/${IOTGW_TRIPLET}/pkgconfig:${IOTGW_SYSROOT}/usr/share/pkgconfig")
else()
    # Multiarch: the target's libraries live in the host's own tree, in <triplet> folders.
    if(IOTGW_QEMU_BIN)
        set(CMAKE_CROSSCOMPILING_EMULATOR ${IOTGW_QEMU_BIN})
    endif()
    set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/${IOTGW_TRIPLET}/pkgconfig:/usr/share/pkgconfig")
endif()
