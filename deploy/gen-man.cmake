# Generates the iotgw(1) manual page: the prose of deploy/iotgw.1.in, with its COMMANDS
# section made from the built binary's own help, so that the page lists every command and
# option the binary has. Run by the build (CMakeLists.txt, install block):
#
#   cmake -DIOTGW=build/iotgw [-DEMULATOR="qemu-aarch64-static;-L;/sysroot"] \
#         -DTEMPLATE=deploy/iotgw.1.in -DOUT=build/deploy/iotgw.1 -DVERSION=0.1.0 \
#         -P deploy/gen-man.cmake
#
# Writes OUT and OUT.gz (gzip -9n: no name, no time stamp, so that builds are reproducible).
# The date honours SOURCE_DATE_EPOCH.
cmake_minimum_required(VERSION 3.18)
foreach(v IOTGW TEMPLATE OUT VERSION)
    if(NOT DEFINED ${v})
        message(FATAL_ERROR "gen-man.cmake: -D${v}=... is required")
    endif()
endforeach()

# A sanitizer build must not fail the help output over a leak report at exit.
set(ENV{ASAN_OPTIONS} "detect_leaks=0")

function(run_help out_var)
    execute_process(COMMAND ${EMULATOR} ${IOTGW} ${ARGN}
                    RESULT_VARIABLE rc OUTPUT_VARIABLE text ERROR_VARIABLE err)
    if(NOT rc EQUAL 0)
        message(FATAL_ERROR "gen-man.cmake: '${IOTGW} ${ARGN}' failed (${rc}): ${err}")
    endif()
    set(${out_var} "${text}" PARENT_SCOPE)
endfunction()

# Plain text to roff, kept verbatim in no-fill mode: backslashes, ASCII hyphens (so that
# options can be searched and copied) and control characters at the start of a line.
function(roff_escape out_var text)
    string(REPLACE "\\" "\\e" text "${text}")
    string(REPLACE "-" "\\-" text "${text}")
    string(REGEX REPLACE "(^|\n)([.'])" "\\1\\\\&\\2" text "${text}")
    set(${out_var} "${text}" PARENT_SCOPE)
endfunction()

run_help(top --help)
# The "commands:" block of `iotgw --help`: two spaces, the name, at least two spaces.
string(REGEX MATCHALL "\n  [a-z][a-z0-9-]*  " found "${top}")
set(commands "")
foreach(f IN LISTS found)
    string(STRIP "${f}" name)
    list(APPEND commands "${name}")
endforeach()
if(NOT commands MATCHES "(^|;)run(;|$)")
    message(FATAL_ERROR "gen-man.cmake: no 'run' command found in `iotgw --help`:\n${top}")
endif()

set(section "")
foreach(name IN LISTS commands)
    string(APPEND section ".SS \"iotgw ${name}\"\n")
    if(name STREQUAL "version")
        string(APPEND section "Prints the version (also \\fBiotgw \\-\\-version\\fR).\n")
        continue()
    endif()
    run_help(help ${name} --help)
    roff_escape(help "${help}")
    if(NOT help MATCHES "\n$")
        string(APPEND help "\n")
    endif()
    string(APPEND section ".nf\n${help}.fi\n")
endforeach()

set(IOTGW_MAN_COMMANDS "${section}")
set(IOTGW_VERSION "${VERSION}")
string(TIMESTAMP IOTGW_MAN_DATE "%Y-%m-%d" UTC)
configure_file("${TEMPLATE}" "${OUT}" @ONLY)

find_program(GZIP gzip REQUIRED)
execute_process(COMMAND ${GZIP} -9n -c "${OUT}" OUTPUT_FILE "${OUT}.gz" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
    message(FATAL_ERROR "gen-man.cmake: gzip failed (${rc})")
endif()
