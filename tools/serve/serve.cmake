# tools/serve/serve.cmake -- builds the HTTP server of `pillar serve` (libmicrohttpd +
# cJSON, both from Debian) into the pillar CLI when pkg-config finds them; without them
# `pillar serve` reports that the server was not built. Include it from the top-level
# CMakeLists.txt (anywhere: if the CLI target does not exist yet, the work is deferred to
# the end of the directory):
#     include(tools/serve/serve.cmake)
# Sets PILLAR_HAVE_SERVER.

function(pillar_add_server)
  if(NOT TARGET pillar_cli)
    message(STATUS "pillar serve: no pillar_cli target; the server is not built")
    return()
  endif()
  find_package(PkgConfig QUIET)
  if(PkgConfig_FOUND)
    pkg_check_modules(PILLAR_MHD QUIET IMPORTED_TARGET libmicrohttpd)
    pkg_check_modules(PILLAR_CJSON QUIET IMPORTED_TARGET libcjson)
  endif()
  if(NOT PILLAR_MHD_FOUND OR NOT PILLAR_CJSON_FOUND)
    message(STATUS "pillar serve: libmicrohttpd-dev or libcjson-dev missing; the server is not built")
    set(PILLAR_HAVE_SERVER OFF PARENT_SCOPE)
    return()
  endif()
  file(GLOB serve_src CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tools/serve/*.c)
  target_sources(pillar_cli PRIVATE ${serve_src})
  target_link_libraries(pillar_cli PRIVATE PkgConfig::PILLAR_MHD PkgConfig::PILLAR_CJSON)
  set(PILLAR_HAVE_SERVER ON PARENT_SCOPE)
  message(STATUS "pillar serve: HTTP server built (libmicrohttpd ${PILLAR_MHD_VERSION}, cJSON ${PILLAR_CJSON_VERSION})")
endfunction()

if(TARGET pillar_cli)
  pillar_add_server()
else()
  cmake_language(DEFER DIRECTORY ${CMAKE_SOURCE_DIR} CALL pillar_add_server)
endif()
