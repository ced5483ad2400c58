"""The frrdmvpn configuration language (``/etc/frrdmvpn/frrdmvpn.conf``). Pure, no I/O.

Language (reference: ``docs/config.md``):

* :mod:`.model` — the typed, immutable model of the whole language;
* :mod:`.modes`, :mod:`.grammar`, :mod:`.commands` — sub-modes, the command grammar and
  the table of statements (drives parsing, ``?`` help and the reference);
* :mod:`.edit` — apply one line (``no``/``default`` forms included) in a mode context:
  the shell's primitive; :mod:`.parse` — a whole file (indentation = sub-modes);
* :mod:`.canonical_text` — the canonical text; :mod:`.diagnostics`, :mod:`.source` — findings
  and where they point; :mod:`.validate` — semantic rules;
* :mod:`.defaults` — frrdmvpn's defaults and the effective value of every setting.

Desired state for the apply step: :mod:`.kernel`, :mod:`.frr` (+ :mod:`.frrdiff`, the
vtysh commands from running to desired), :mod:`.swan` (VICI messages and their changes),
:mod:`.policy` (binding authorization).
"""
