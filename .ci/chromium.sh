# Sourced by .ci/run: install Debian's Chromium (and its driver) if missing, for the
# console's browser tests (tests/console/test_console_browser.py, Playwright launched on
# this executable; no browser build is ever downloaded). Returns non-zero if it cannot.
chromium_install() {
  if ! command -v chromium >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) \
      >/tmp/covenant-chromium-install.log 2>&1 || return 1
  fi
  command -v chromium >/dev/null 2>&1 || return 1
  COVENANT_CHROMIUM="$(command -v chromium)"
}
chromium_install
