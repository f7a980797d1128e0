"""A hand-assembled, do-nothing proxy-wasm module (ABI 0.2.1), a few hundred
bytes. It lets the rig check the `envoy.filters.network.wasm` block against
the real Envoy without our filter: the module loads, `proxy_on_configure`
returns `configure_ok`, and every data callback returns Continue, so bytes
pass through untouched.
"""

from __future__ import annotations

_I32 = 0x7F


def _uleb(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _sleb(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if (n == 0 and not b & 0x40) or (n == -1 and b & 0x40):
            out.append(b)
            return bytes(out)
        out.append(b | 0x80)


def _vec(items: list[bytes]) -> bytes:
    return _uleb(len(items)) + b"".join(items)


def _section(sid: int, payload: bytes) -> bytes:
    return bytes([sid]) + _uleb(len(payload)) + payload


def _name(s: str) -> bytes:
    b = s.encode()
    return _uleb(len(b)) + b


def null_filter_wasm(configure_ok: bool = True) -> bytes:
    types = [
        ((), ()),  # 0: () -> ()
        ((_I32, _I32), ()),  # 1: (i32, i32) -> ()
        ((_I32, _I32), (_I32,)),  # 2: (i32, i32) -> i32
        ((_I32,), (_I32,)),  # 3: (i32) -> i32
        ((_I32, _I32, _I32), (_I32,)),  # 4: (i32, i32, i32) -> i32
        ((_I32,), ()),  # 5: (i32) -> ()
    ]
    # (export name, type index, constant result or None)
    funcs = [
        ("proxy_abi_version_0_2_1", 0, None),
        ("proxy_on_context_create", 1, None),
        ("proxy_on_vm_start", 2, 1),
        ("proxy_on_configure", 2, 1 if configure_ok else 0),
        ("proxy_on_new_connection", 3, 0),  # Continue
        ("proxy_on_downstream_data", 4, 0),  # Continue
        ("proxy_on_upstream_data", 4, 0),  # Continue
        ("proxy_on_done", 3, 1),
        ("proxy_on_delete", 5, None),
        ("proxy_on_memory_allocate", 3, 1024),  # never used: we never ask for data
    ]
    type_sec = _vec([b"\x60" + _vec([bytes([p]) for p in ps]) + _vec([bytes([r]) for r in rs]) for ps, rs in types])
    func_sec = _vec([_uleb(t) for _, t, _ in funcs])
    mem_sec = _vec([b"\x00" + _uleb(1)])  # one page, no maximum
    exports = [_name(n) + b"\x00" + _uleb(i) for i, (n, _, _) in enumerate(funcs)]
    exports.append(_name("memory") + b"\x02" + _uleb(0))
    export_sec = _vec(exports)
    bodies = []
    for _, _, const in funcs:
        code = (b"\x41" + _sleb(const) if const is not None else b"") + b"\x0b"
        body = b"\x00" + code  # no locals
        bodies.append(_uleb(len(body)) + body)
    code_sec = _vec(bodies)
    return (
        b"\x00asm\x01\x00\x00\x00"
        + _section(1, type_sec)
        + _section(3, func_sec)
        + _section(5, mem_sec)
        + _section(7, export_sec)
        + _section(10, code_sec)
    )
