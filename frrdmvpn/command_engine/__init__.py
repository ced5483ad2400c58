"""The IOS command engine the shell's EXEC commands and the configuration language share.

Pure: :mod:`.tokens` splits a line into words and reads numbers; :mod:`.params` holds the
typed parameters (``<1-65000>``, ``A.B.C.D``, ``TunnelN`` ...); :mod:`.grammar` holds the
command trie, the one matching rule (exact keyword, typed value, unique prefix, any word),
``no`` forms, output modifiers, ``?`` entries, TAB candidates and where the ``^`` goes;
:mod:`.ios_text` prints what IOS prints for them.
"""
