#!/usr/bin/python3
"""Reads a Ferry repository without Ferry, following docs/FORMAT.md only.

It exists so that data stays recoverable if Ferry itself is gone: it is short on purpose and uses only
well-known libraries (Debian: python3-cryptography python3-zstandard python3-argon2).

Usage (a repository in a local directory; copy an S3 repository to a directory first with any S3 tool):

    FERRY_PASSWORD=... docs/recover.py REPO chunks            # list every chunk: id type size pack offset
    FERRY_PASSWORD=... docs/recover.py REPO cat CHUNK_ID      # write one chunk's plaintext to stdout
    FERRY_PASSWORD=... docs/recover.py REPO dump DIR          # write every chunk to DIR/<id>, checked
    FERRY_PASSWORD=... docs/recover.py REPO snapshots         # list snapshots: id time kind source
    FERRY_PASSWORD=... docs/recover.py REPO restore-block SNAPSHOT_ID OUT   # a block snapshot into file OUT
    FERRY_PASSWORD=... docs/recover.py REPO restore-files SNAPSHOT_ID DIR   # a files snapshot into new DIR
    docs/recover.py --key-file FILE REPO ...                  # open with a key file instead of a password

SNAPSHOT_ID is a snapshot's id or any prefix of it that names one snapshot only, such as the 8 digits
'ferry snapshots' prints.

Every chunk is authenticated (AES-256-GCM) and re-hashed (HMAC-SHA-256) before it is written out.
"""
import base64
import hashlib
import hmac
import json
import os
import struct
import sys

import zstandard
from argon2.low_level import Type, hash_secret_raw
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

ENTRY = struct.Struct("<BQII32s")  # type, offset, length, raw length, chunk id: 49 bytes


def fail(msg):
    sys.exit("recover: " + msg)


def aead_open(key, sealed, aad):
    return AESGCM(key).decrypt(sealed[:12], sealed[12:], aad)


def envelope_open(key, sealed, aad):
    plain = aead_open(key, sealed, aad)
    if plain[0] == 0:
        return plain[1:]
    if plain[0] == 1:
        return zstandard.ZstdDecompressor().decompress(plain[1:])
    raise ValueError("unknown encoding %d" % plain[0])


def open_master_key(repo, password, key_file):
    config = json.load(open(os.path.join(repo, "config")))
    if config["format"] != "ferry-repository" or config["version"] != 1:
        fail("not a version 1 Ferry repository: %r" % config)
    aad = ("ferry:key:v1:" + config["id"]).encode()
    for name in sorted(os.listdir(os.path.join(repo, "keys"))):
        slot = json.load(open(os.path.join(repo, "keys", name)))
        kdf = slot["kdf"]
        salt = base64.b64decode(kdf["salt"])
        if slot["kind"] == "password" and password is not None:
            kek = hash_secret_raw(password.encode("utf-8"), salt, time_cost=kdf["iterations"],
                                  memory_cost=kdf["memory_kib"], parallelism=kdf["parallelism"],
                                  hash_len=32, type=Type.ID, version=19)
        elif slot["kind"] == "keyfile" and key_file is not None:
            kek = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt,
                       info=b"ferry key slot v1").derive(key_file)
        else:
            continue
        try:
            material = aead_open(kek, base64.b64decode(slot["data"]), aad)
        except Exception:
            continue
        return material[:32], material[32:]
    fail("no key slot opens with the password or key file given")


def read_index(repo, enc_key):
    """Every chunk: id -> (type, pack id, offset, length, raw length). Honours 'supersedes'."""
    files = {}
    for name in sorted(os.listdir(os.path.join(repo, "index"))):
        data = open(os.path.join(repo, "index", name), "rb").read()
        if hashlib.sha256(data).hexdigest() != name:
            fail("index/%s does not match its name" % name)
        files[name] = envelope_open(enc_key, data, b"ferry:index:v1")
    parsed, superseded = {}, set()
    for name, p in files.items():
        if p[:4] != b"FRIX" or p[4] != 1:
            fail("index/%s: bad magic or version" % name)
        pos = 5
        (n_sup,) = struct.unpack_from("<I", p, pos)
        pos += 4
        for _ in range(n_sup):
            superseded.add(p[pos:pos + 32].hex())
            pos += 32
        (n_packs,) = struct.unpack_from("<I", p, pos)
        pos += 4
        packs = []
        for _ in range(n_packs):
            pack_id = p[pos:pos + 32].hex()
            (n,) = struct.unpack_from("<I", p, pos + 32)
            pos += 36
            for _ in range(n):
                packs.append((pack_id, ENTRY.unpack_from(p, pos)))
                pos += ENTRY.size
        parsed[name] = packs
    chunks = {}
    for name, packs in parsed.items():
        if name in superseded:
            continue
        for pack_id, (typ, off, length, raw, cid) in packs:
            chunks.setdefault(cid.hex(), (typ, pack_id, off, length, raw))
    return chunks


def read_chunk(repo, enc_key, id_key, cid, where):
    typ, pack_id, off, length, raw = where
    with open(os.path.join(repo, "data", pack_id[:2], pack_id), "rb") as f:
        f.seek(off)
        sealed = f.read(length)
    aad = b"ferry:chunk:v1:" + bytes([typ]) + bytes.fromhex(cid)
    plain = envelope_open(enc_key, sealed, aad)
    if len(plain) != raw or hmac.new(id_key, plain, hashlib.sha256).hexdigest() != cid:
        fail("chunk %s does not match its id" % cid)
    return plain


def find_snapshot(repo, ref):
    """The full id of the one snapshot whose id starts with ref."""
    ref = ref.lower()
    if not ref or any(c not in "0123456789abcdef" for c in ref):
        fail("a snapshot id is hex digits (a unique prefix is enough), not %r" % ref)
    ids = sorted(n for n in os.listdir(os.path.join(repo, "snapshots"))
                 if n.startswith(ref) and len(n) == 64 and all(c in "0123456789abcdef" for c in n))
    if not ids:
        fail("no snapshot id starts with %s in %s" % (ref, repo))
    if len(ids) > 1:
        fail("snapshot id %s is ambiguous: %d snapshots start with it (%s); give more digits"
             % (ref, len(ids), ", ".join(i[:len(ref) + 4] for i in ids)))
    return ids[0]


def read_snapshot(repo, enc_key, sid):
    data = open(os.path.join(repo, "snapshots", sid), "rb").read()
    if hashlib.sha256(data).hexdigest() != sid:
        fail("snapshots/%s does not match its name" % sid)
    return json.loads(envelope_open(enc_key, data, b"ferry:snapshot:v1"))


def restore_block(repo, enc_key, id_key, chunks, snap, out_path):
    vol = snap["volume"]
    size, bs, per_page = vol["size"], vol["block_size"], vol["page_blocks"]
    blocks = (size + bs - 1) // bs
    with open(out_path, "wb") as out:
        out.truncate(size)  # sparse: zero blocks are never written
        for p, page_id in enumerate(vol["pages"]):
            if page_id is None:
                continue  # every block of this page is zero
            page = read_chunk(repo, enc_key, id_key, page_id, chunks[page_id])
            count = min(per_page, blocks - p * per_page)
            if page[:4] != b"FRMP" or page[4] != 1 or struct.unpack_from("<I", page, 5)[0] != count:
                fail("manifest page %s is not a version 1 page of %d entries" % (page_id, count))
            for i in range(count):
                cid = page[9 + 32 * i:9 + 32 * (i + 1)]
                if cid == bytes(32):
                    continue
                b = p * per_page + i
                data = read_chunk(repo, enc_key, id_key, cid.hex(), chunks[cid.hex()])
                if len(data) != min(bs, size - b * bs):
                    fail("block %d: chunk has the wrong length" % b)
                out.seek(b * bs)
                out.write(data)


def node_bytes(node, field):
    if field in node:
        return node[field].encode("utf-8")
    return base64.b64decode(node[field + "_b64"])


def restore_files(repo, enc_key, id_key, chunks, tree_id, out_dir, links=None):
    """Writes the tree into out_dir (which must not exist); returns the number of entries."""
    tree = json.loads(read_chunk(repo, enc_key, id_key, tree_id, chunks[tree_id]))
    if tree["version"] != 1:
        fail("tree %s has version %r" % (tree_id, tree["version"]))
    os.mkdir(out_dir)
    count, later = 0, []
    links = {} if links is None else links  # hard links: link id -> first path, across directories
    for node in tree["nodes"]:
        name = node_bytes(node, "name")
        if name in (b"", b".", b"..") or b"/" in name or b"\0" in name:
            fail("tree %s: refusing the entry name %r" % (tree_id, name))
        path = os.path.join(os.fsencode(out_dir), name)
        kind = node["type"]
        if kind == "dir":
            count += restore_files(repo, enc_key, id_key, chunks, node["subtree"], path, links)
            later.append((path, node))
        elif kind == "file":
            if node.get("link") in links:
                os.link(links[node["link"]], path)
            else:
                with open(path, "wb") as out:
                    pos = 0
                    for piece in node.get("content", []):
                        if "id" in piece:  # else a hole: left unwritten
                            data = read_chunk(repo, enc_key, id_key, piece["id"], chunks[piece["id"]])
                            if len(data) != piece["size"]:
                                fail("chunk %s has the wrong length" % piece["id"])
                            out.seek(pos)
                            out.write(data)
                        pos += piece["size"]
                    out.truncate(node["size"])
                if "link" in node:
                    links[node["link"]] = path
                later.append((path, node))
        elif kind == "symlink":
            os.symlink(node_bytes(node, "target"), path)
            os.lchown(path, node["uid"], node["gid"])
            os.utime(path, ns=(node["mtime_ns"], node["mtime_ns"]), follow_symlinks=False)
        elif kind == "fifo":
            os.mkfifo(path, node["mode"])
            later.append((path, node))
        else:
            print("recover: skipping %s entry %r" % (kind, name), file=sys.stderr)
            continue
        count += 1
    for path, node in later:  # metadata last: directories' mtimes change while their entries are made
        os.chown(path, node["uid"], node["gid"])
        os.chmod(path, node["mode"])
        for xname, value in node.get("xattrs", {}).items():
            os.setxattr(path, xname, base64.b64decode(value))
        os.utime(path, ns=(node["mtime_ns"], node["mtime_ns"]))
    return count


def main(argv):
    key_file = None
    if len(argv) > 2 and argv[1] == "--key-file":
        key_file = open(argv[2], "rb").read()
        argv = argv[:1] + argv[3:]
    if len(argv) < 3:
        fail(__doc__)
    repo, command = argv[1], argv[2]
    password = os.environ.get("FERRY_PASSWORD") if key_file is None else None
    enc_key, id_key = open_master_key(repo, password, key_file)
    chunks = read_index(repo, enc_key)
    if command == "chunks":
        for cid, (typ, pack_id, off, length, raw) in sorted(chunks.items()):
            print("%s %d %d %s %d" % (cid, typ, raw, pack_id, off))
    elif command == "cat" and len(argv) == 4:
        if argv[3] not in chunks:
            fail("no chunk %s in the index" % argv[3])
        sys.stdout.buffer.write(read_chunk(repo, enc_key, id_key, argv[3], chunks[argv[3]]))
    elif command == "dump" and len(argv) == 4:
        os.makedirs(argv[3], exist_ok=True)
        for cid, where in sorted(chunks.items()):
            with open(os.path.join(argv[3], cid), "wb") as out:
                out.write(read_chunk(repo, enc_key, id_key, cid, where))
        print("%d chunks written to %s" % (len(chunks), argv[3]))
    elif command == "snapshots":
        for sid in sorted(os.listdir(os.path.join(repo, "snapshots"))):
            snap = read_snapshot(repo, enc_key, sid)
            print("%s %s %s %s" % (sid, snap["time"], snap["kind"], snap["source"]))
    elif command == "restore-block" and len(argv) == 5:
        sid = find_snapshot(repo, argv[3])
        snap = read_snapshot(repo, enc_key, sid)
        if snap["kind"] != "block":
            fail("snapshot %s is not a block snapshot" % sid[:8])
        restore_block(repo, enc_key, id_key, chunks, snap, argv[4])
        print("restored %d bytes into %s" % (snap["volume"]["size"], argv[4]))
    elif command == "restore-files" and len(argv) == 5:
        sid = find_snapshot(repo, argv[3])
        snap = read_snapshot(repo, enc_key, sid)
        if snap["kind"] != "files":
            fail("snapshot %s is not a files snapshot" % sid[:8])
        n = restore_files(repo, enc_key, id_key, chunks, snap["tree"], argv[4])
        print("restored %d entries into %s" % (n, argv[4]))
    else:
        fail(__doc__)


if __name__ == "__main__":
    main(sys.argv)
