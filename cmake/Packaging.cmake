# Installation layout (`cmake --install`) and the Debian package (`cpack -G DEB`).
# Included from the top-level CMakeLists.txt after the binaries' install() rules
# (holdd -> sbin, holdctl -> bin).
#
#   path (prefix /usr, as in the .deb)     from
#   /usr/sbin/holdd, /usr/bin/holdctl      the targets
#   /etc/holdd/holdd.toml                  conf/holdd.toml        (never overwritten)
#   /etc/holdd/mailboxes.txt, aliases.txt  conf/*.txt templates   (never overwritten)
#   /usr/lib/systemd/system/holdd.service  systemd/holdd.service  (paths adjusted, see below)
#   /usr/lib/sysusers.d/holdd.conf         systemd/holdd.sysusers
#   /usr/lib/tmpfiles.d/holdd.conf         systemd/holdd.tmpfiles
#   /usr/share/man/man8/holdd.8.gz, holdctl.8.gz   man/*.8
#   /usr/share/doc/holdd/                  README.md, control-protocol.md, changelog.gz,
#                                          examples/ (conf files, Grafana dashboard)
#
# The configuration goes to /etc when the prefix is /usr or /usr/local (holdd and
# holdctl default to /etc/holdd/holdd.toml), else to PREFIX/etc. The prefix is the
# one in force at install time (`cmake --install --prefix`, or /usr under cpack), so
# these paths are worked out then, not at configure time.

include(GNUInstallDirs)

set(HOLDD_DOCDIR "${CMAKE_INSTALL_DATAROOTDIR}/doc/holdd")

# Man pages and the changelog, compressed as Debian policy wants them.
function(holdd_gzip out_var source output)
  add_custom_command(
    OUTPUT "${PROJECT_BINARY_DIR}/${output}"
    COMMAND gzip -9 -n -c "${PROJECT_SOURCE_DIR}/${source}" > "${PROJECT_BINARY_DIR}/${output}"
    DEPENDS "${PROJECT_SOURCE_DIR}/${source}"
    COMMENT "gzip ${source}"
    VERBATIM)
  set(${out_var} "${PROJECT_BINARY_DIR}/${output}" PARENT_SCOPE)
endfunction()
file(MAKE_DIRECTORY "${PROJECT_BINARY_DIR}/man" "${PROJECT_BINARY_DIR}/packaging")
holdd_gzip(holdd_8 man/holdd.8 man/holdd.8.gz)
holdd_gzip(holdctl_8 man/holdctl.8 man/holdctl.8.gz)
holdd_gzip(holdd_changelog packaging/deb/changelog packaging/changelog.gz)
add_custom_target(holdd_man ALL DEPENDS "${holdd_8}" "${holdctl_8}" "${holdd_changelog}")
install(FILES "${holdd_8}" "${holdctl_8}" DESTINATION "${CMAKE_INSTALL_MANDIR}/man8")
install(FILES "${holdd_changelog}" DESTINATION "${HOLDD_DOCDIR}")

install(FILES README.md docs/control-protocol.md DESTINATION "${HOLDD_DOCDIR}")
install(FILES conf/holdd.toml conf/mailboxes.txt conf/aliases.txt conf/grafana-holdd.json
        DESTINATION "${HOLDD_DOCDIR}/examples")

# systemd reads units, sysusers.d and tmpfiles.d from PREFIX/lib for /usr and /usr/local.
install(FILES systemd/holdd.sysusers DESTINATION lib/sysusers.d RENAME holdd.conf)
install(FILES systemd/holdd.tmpfiles DESTINATION lib/tmpfiles.d RENAME holdd.conf)

# Install-time code: the configuration files (kept if present: an upgrade or a
# reinstall must never replace the operator's configuration; dpkg's conffile
# handling does the same for the package), and the unit with ExecStart= and
# --config pointing at where holdd and its configuration really went.
install(CODE "set(holdd_src \"${PROJECT_SOURCE_DIR}\")
set(holdd_bin \"${PROJECT_BINARY_DIR}\")
set(holdd_sbindir \"${CMAKE_INSTALL_SBINDIR}\")")
install(CODE [[
  if(CMAKE_INSTALL_PREFIX STREQUAL "/usr" OR CMAKE_INSTALL_PREFIX STREQUAL "/usr/local")
    set(holdd_etc "/etc/holdd")
  else()
    set(holdd_etc "${CMAKE_INSTALL_PREFIX}/etc/holdd")
  endif()
  foreach(f holdd.toml mailboxes.txt aliases.txt)
    if(EXISTS "$ENV{DESTDIR}${holdd_etc}/${f}")
      message(STATUS "Keeping: $ENV{DESTDIR}${holdd_etc}/${f} (not replaced by the example)")
    else()
      file(INSTALL DESTINATION "${holdd_etc}" TYPE FILE
           PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
           FILES "${holdd_src}/conf/${f}")
    endif()
  endforeach()

  file(READ "${holdd_src}/systemd/holdd.service" unit)
  string(REPLACE "/usr/sbin/holdd" "${CMAKE_INSTALL_PREFIX}/${holdd_sbindir}/holdd" unit "${unit}")
  string(REPLACE "/etc/holdd/holdd.toml" "${holdd_etc}/holdd.toml" unit "${unit}")
  file(MAKE_DIRECTORY "${holdd_bin}/systemd")
  file(WRITE "${holdd_bin}/systemd/holdd.service" "${unit}")
  file(INSTALL DESTINATION "${CMAKE_INSTALL_PREFIX}/lib/systemd/system" TYPE FILE
       FILES "${holdd_bin}/systemd/holdd.service")
]])

# ---- cpack -G DEB ---------------------------------------------------------------
set(HOLDD_PACKAGE_MAINTAINER "holdd maintainers <holdd@localhost>"
    CACHE STRING "Maintainer field of the Debian package")

set(CPACK_GENERATOR "DEB")
set(CPACK_PACKAGE_NAME "holdd")
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_CONTACT "${HOLDD_PACKAGE_MAINTAINER}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "temporary MX that holds mail during mail-server migrations")
set(CPACK_PACKAGE_DESCRIPTION
"holdd takes over the old mail server's MX address while mailboxes move to a
new server. It accepts every legitimate message for its domains, stores it
durably and never bounces. Per mailbox, mail is relayed to the old server,
held in arrival order while the mailbox is copied, or relayed to the new
server; holdctl moves mailboxes between these states and replays held mail
in order on release.")
set(CPACK_PACKAGING_INSTALL_PREFIX "/usr")
set(CPACK_STRIP_FILES TRUE)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # holdd_VERSION_ARCH.deb
set(CPACK_DEBIAN_PACKAGE_SECTION "mail")
set(CPACK_DEBIAN_PACKAGE_PRIORITY "optional")
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)   # Depends: from dpkg-shlibdeps (dpkg-dev)
# Appended to by the shlibdeps above. procps: /bin/kill, which the unit's
# ExecReload= runs (not in a minimal Debian 12; `systemctl reload holdd` failed
# with 203/EXEC without it, tests/integration/test_deb_install.py).
set(CPACK_DEBIAN_PACKAGE_DEPENDS "procps")
# systemd-sysusers/-tmpfiles create the user and directories; without systemd the
# postinst falls back to useradd (package passwd, priority required).
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "systemd")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    "${PROJECT_SOURCE_DIR}/packaging/deb/postinst"
    "${PROJECT_SOURCE_DIR}/packaging/deb/prerm"
    "${PROJECT_SOURCE_DIR}/packaging/deb/postrm"
    "${PROJECT_SOURCE_DIR}/packaging/deb/conffiles")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
include(CPack)
