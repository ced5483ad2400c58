"""Documentation generated from the code at build time: the programs' manual pages
(``python3 -m docgen OUTDIR``, run by debian/rules). Build tooling, not part of the frrdmvpn
package: it imports the programs (``frrdmvpn``, ``cli``, ``lab``), none of them imports it."""
