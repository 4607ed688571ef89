# guestd-hub's Prometheus side (hub/prom*.c, hub/http*.c): the exposition
# cache and its HTTP endpoint, a library the hub daemon and the tests link.
pkg_check_modules(MHD REQUIRED IMPORTED_TARGET libmicrohttpd)
find_package(ZLIB REQUIRED)
file(GLOB GUESTD_HUB_PROM_SOURCES CONFIGURE_DEPENDS
  ${PROJECT_SOURCE_DIR}/hub/prom*.c
  ${PROJECT_SOURCE_DIR}/hub/http*.c)
add_library(guestd_hub_prom STATIC ${GUESTD_HUB_PROM_SOURCES})
target_link_libraries(guestd_hub_prom PUBLIC guestd_core PkgConfig::MHD ZLIB::ZLIB)
