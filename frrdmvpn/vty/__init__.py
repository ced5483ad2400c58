"""FRR's vty protocol (what vtysh speaks to each daemon over ``/run/frr/<daemon>.vty``)."""
