"""The DMVPN test lab (``frrdmvpn-lab``, docs/lab.md): a development tool run from the
source tree, not part of the frrdmvpn package."""
