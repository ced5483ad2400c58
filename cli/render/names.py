"""API values in IOS words: peer and session states, cache types, algorithm names.

Algorithm names arrive as charon's enum names ("AES_CBC", "HMAC_SHA2_256_128",
"MODP_2048"); IOS prints transforms as ``esp-256-aes esp-sha256-hmac`` and IKEv2 SAs as
``Encr: AES-CBC, keysize: 256, PRF: SHA256, Hash: SHA256, DH Grp:14``. Names this module
does not know are printed in a readable form derived from charon's name, never dropped.
"""

from __future__ import annotations

from frrdmvpn.v1 import ipsec_pb2, nhrp_pb2, node_pb2, types_pb2

_PEER_STATE = {
    types_pb2.PEER_STATE_DOWN: "DOWN",
    types_pb2.PEER_STATE_IKE: "IKE",
    types_pb2.PEER_STATE_IPSEC: "IPSEC",
    types_pb2.PEER_STATE_NHRP: "NHRP",
    types_pb2.PEER_STATE_UP: "UP",
}


def peer_state(state: types_pb2.PeerState.ValueType) -> str:
    """``show dmvpn`` State column: UP, NHRP, IPSEC, IKE, DOWN (``?`` when not known)."""
    return _PEER_STATE.get(state, "?")


_TUNNEL_TYPE = {
    node_pb2.TUNNEL_TYPE_HUB: "Hub",
    node_pb2.TUNNEL_TYPE_SPOKE: "Spoke",
    node_pb2.TUNNEL_TYPE_HUB_AND_SPOKE: "Hub/Spoke",
}


def tunnel_type(kind: node_pb2.TunnelType.ValueType) -> str:
    """``show dmvpn`` ``Type:`` word."""
    return _TUNNEL_TYPE.get(kind, "Unknown")


_SESSION_STATUS = {
    ipsec_pb2.CRYPTO_SESSION_STATUS_DOWN: "DOWN",
    ipsec_pb2.CRYPTO_SESSION_STATUS_DOWN_NEGOTIATING: "DOWN-NEGOTIATING",
    ipsec_pb2.CRYPTO_SESSION_STATUS_UP_IDLE: "UP-IDLE",
    ipsec_pb2.CRYPTO_SESSION_STATUS_UP_NO_IKE: "UP-NO-IKE",
    ipsec_pb2.CRYPTO_SESSION_STATUS_UP_ACTIVE: "UP-ACTIVE",
}


def session_status(status: ipsec_pb2.CryptoSessionStatus.ValueType) -> str:
    """``show crypto session`` status: UP-ACTIVE, UP-NO-IKE, DOWN-NEGOTIATING ..."""
    return _SESSION_STATUS.get(status, "UNKNOWN")


_IKE_LIVE = (ipsec_pb2.IKE_SA_STATE_ESTABLISHED, ipsec_pb2.IKE_SA_STATE_REKEYING)
_IKE_NEGOTIATING = (ipsec_pb2.IKE_SA_STATE_CREATED, ipsec_pb2.IKE_SA_STATE_CONNECTING)
_IKE_DYING = (
    ipsec_pb2.IKE_SA_STATE_REKEYED,
    ipsec_pb2.IKE_SA_STATE_DELETING,
    ipsec_pb2.IKE_SA_STATE_DESTROYING,
)


def ike_active(state: ipsec_pb2.IkeSaState.ValueType) -> str:
    """``show crypto session`` IKE SA word: Active or Inactive."""
    return "Active" if state in _IKE_LIVE else "Inactive"


def ikev2_status(state: ipsec_pb2.IkeSaState.ValueType) -> str:
    """``show crypto ikev2 sa`` Status: READY, IN-NEG, DELETE or UNKNOWN."""
    if state in _IKE_LIVE or state == ipsec_pb2.IKE_SA_STATE_PASSIVE:
        return "READY"
    if state in _IKE_NEGOTIATING:
        return "IN-NEG"
    if state in _IKE_DYING:
        return "DELETE"
    return "UNKNOWN"


_CHILD_LIVE = (
    ipsec_pb2.CHILD_SA_STATE_INSTALLED,
    ipsec_pb2.CHILD_SA_STATE_UPDATING,
    ipsec_pb2.CHILD_SA_STATE_REKEYING,
    ipsec_pb2.CHILD_SA_STATE_REKEYED,
)


def child_status(sa: ipsec_pb2.ChildSa) -> str:
    """``show crypto ipsec sa`` Status: ``ACTIVE(ACTIVE)``, else ``INACTIVE(<charon state>)``."""
    if sa.state in _CHILD_LIVE:
        return "ACTIVE(ACTIVE)"
    word = sa.charon_state or ipsec_pb2.ChildSaState.Name(sa.state).removeprefix("CHILD_SA_STATE_")
    return f"INACTIVE({word})"


_CACHE_TYPE = {
    nhrp_pb2.NHRP_CACHE_TYPE_INVALID: "invalid",
    nhrp_pb2.NHRP_CACHE_TYPE_INCOMPLETE: "incomplete",
    nhrp_pb2.NHRP_CACHE_TYPE_NEGATIVE: "incomplete",
    nhrp_pb2.NHRP_CACHE_TYPE_CACHED: "dynamic",
    nhrp_pb2.NHRP_CACHE_TYPE_DYNAMIC: "dynamic",
    nhrp_pb2.NHRP_CACHE_TYPE_NHS: "static",
    nhrp_pb2.NHRP_CACHE_TYPE_STATIC: "static",
    nhrp_pb2.NHRP_CACHE_TYPE_LOCAL: "static",
}


def cache_type(kind: nhrp_pb2.NhrpCacheType.ValueType) -> str:
    """``show ip nhrp`` ``Type:`` word (dynamic, static, incomplete)."""
    return _CACHE_TYPE.get(kind, "unknown")


_CACHE_LETTER = {
    nhrp_pb2.NHRP_CACHE_TYPE_INCOMPLETE: "I",
    nhrp_pb2.NHRP_CACHE_TYPE_NEGATIVE: "I",
    nhrp_pb2.NHRP_CACHE_TYPE_CACHED: "D",
    nhrp_pb2.NHRP_CACHE_TYPE_DYNAMIC: "D",
    nhrp_pb2.NHRP_CACHE_TYPE_NHS: "S",
    nhrp_pb2.NHRP_CACHE_TYPE_STATIC: "S",
    nhrp_pb2.NHRP_CACHE_TYPE_LOCAL: "L",
}


def cache_letter(kind: nhrp_pb2.NhrpCacheType.ValueType) -> str:
    """``show dmvpn`` Attrb / ``show ip nhrp brief`` type letter: S, D, I or L."""
    return _CACHE_LETTER.get(kind, "")


def short_interface(name: str) -> str:
    """IOS's short interface name: ``Tunnel0`` -> ``Tu0``."""
    return "Tu" + name.removeprefix("Tunnel") if name.startswith("Tunnel") else name


# --- IPsec (ESP) transforms -------------------------------------------------------------

_ESP_AES_CBC = {128: "esp-aes", 192: "esp-192-aes", 256: "esp-256-aes"}
_ESP_FIXED = {"3DES": "esp-3des", "DES": "esp-des", "NULL": "esp-null"}
_ESP_INTEGRITY = {
    "HMAC_MD5_96": "esp-md5-hmac",
    "HMAC_SHA1_96": "esp-sha-hmac",
    "HMAC_SHA2_256_128": "esp-sha256-hmac",
    "HMAC_SHA2_384_192": "esp-sha384-hmac",
    "HMAC_SHA2_512_256": "esp-sha512-hmac",
}
_IV_BYTES = {"AES_CBC": 16, "AES_GCM_8": 8, "AES_GCM_12": 8, "AES_GCM_16": 8, "3DES": 8}


def _esp_cipher(name: str, key_size: int) -> str:
    if name == "AES_CBC" and key_size in _ESP_AES_CBC:
        return _ESP_AES_CBC[key_size]
    if name.startswith("AES_GCM"):
        return "esp-gcm" if key_size in (0, 128) else f"esp-gcm {key_size}"
    if name in _ESP_FIXED:
        return _ESP_FIXED[name]
    word = "esp-" + name.lower().replace("_", "-")
    return f"{word} {key_size}" if key_size else word


def esp_transform(alg: ipsec_pb2.ChildAlgorithms) -> str:
    """IOS transform words of a CHILD_SA: ``esp-256-aes esp-sha256-hmac``, ``esp-gcm 256``."""
    words = [_esp_cipher(alg.encryption, alg.encryption_key_size)] if alg.encryption else []
    if alg.integrity:
        words.append(
            _ESP_INTEGRITY.get(alg.integrity, "esp-" + alg.integrity.lower().replace("_", "-"))
        )
    return " ".join(words) or "(none)"


def iv_bytes(alg: ipsec_pb2.ChildAlgorithms) -> int | None:
    """IV size of the ESP cipher in bytes, None when not known."""
    return _IV_BYTES.get(alg.encryption)


# --- IKE --------------------------------------------------------------------------------

_DH_GROUP = {
    "MODP_768": 1,
    "MODP_1024": 2,
    "MODP_1536": 5,
    "MODP_2048": 14,
    "MODP_3072": 15,
    "MODP_4096": 16,
    "MODP_6144": 17,
    "MODP_8192": 18,
    "ECP_256": 19,
    "ECP_384": 20,
    "ECP_521": 21,
    "MODP_1024_160": 22,
    "MODP_2048_224": 23,
    "MODP_2048_256": 24,
    "ECP_192": 25,
    "ECP_224": 26,
    "CURVE_25519": 31,
    "CURVE_448": 32,
}
_PRF = {
    "PRF_HMAC_MD5": "MD5",
    "PRF_HMAC_SHA1": "SHA1",
    "PRF_HMAC_SHA2_256": "SHA256",
    "PRF_HMAC_SHA2_384": "SHA384",
    "PRF_HMAC_SHA2_512": "SHA512",
    "PRF_AES128_XCBC": "AES-XCBC",
    "PRF_AES128_CMAC": "AES-CMAC",
}
_IKE_INTEGRITY = {
    "HMAC_MD5_96": "MD596",
    "HMAC_SHA1_96": "SHA96",
    "HMAC_SHA2_256_128": "SHA256",
    "HMAC_SHA2_384_192": "SHA384",
    "HMAC_SHA2_512_256": "SHA512",
}
_AUTH = {
    ipsec_pb2.AUTH_CLASS_PSK: "PSK",
    ipsec_pb2.AUTH_CLASS_PUBKEY: "PUBKEY",
    ipsec_pb2.AUTH_CLASS_EAP: "EAP",
    ipsec_pb2.AUTH_CLASS_XAUTH: "XAUTH",
    ipsec_pb2.AUTH_CLASS_NULL: "NULL",
}


def dh_group(name: str) -> str:
    """IKE DH group number ("14") for charon's group name; the name itself if unknown."""
    if not name:
        return "none"
    number = _DH_GROUP.get(name)
    return str(number) if number is not None else name


def ike_cipher(name: str) -> str:
    """IOS IKEv2 ``Encr:`` word: AES-CBC, AES-GCM, 3DES."""
    if name.startswith("AES_GCM"):
        return "AES-GCM"
    return name.replace("_", "-") or "none"


def ike_prf(name: str) -> str:
    """IOS IKEv2 ``PRF:`` word: SHA256."""
    return _PRF.get(name, name.removeprefix("PRF_").replace("_", "-") or "none")


def ike_hash(name: str) -> str:
    """IOS IKEv2 ``Hash:`` word: SHA256, or None for AEAD ciphers."""
    return _IKE_INTEGRITY.get(name, name.replace("_", "-")) if name else "None"


def auth_class(kind: ipsec_pb2.AuthClass.ValueType) -> str:
    """IOS ``Auth sign/verify`` word: PSK, PUBKEY (a certificate), EAP ..."""
    return _AUTH.get(kind, "UNKNOWN")
