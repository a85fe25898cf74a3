#!/usr/bin/python3
"""Regenerates the .torrent fixtures in this folder from deterministic data.

Run from this folder:  /usr/bin/python3 gen.py
Needs: mktorrent (Debian mktorrent 1.1), transmission-create (Debian
transmission-cli 3.00) and python3-libtorrent 2.0.8 (Debian). libtorrent makes
the v2 and hybrid fixtures and, for every fixture, computes the info hashes
written to golden.json, so the Go tests compare against an independent
implementation.
"""
import json, os, random, shutil, subprocess, tempfile
import libtorrent as lt

def write(path, n, seed):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(random.Random(seed).randbytes(n))

tmp = tempfile.mkdtemp()
single = os.path.join(tmp, "genome.fa")
write(single, 200_000, 1)
multi = os.path.join(tmp, "rnaseq")
write(os.path.join(multi, "reads", "sample_1.fastq"), 100_000, 2)
write(os.path.join(multi, "reads", "sample_2.fastq"), 70_001, 3)
write(os.path.join(multi, "README.txt"), 1_234, 4)
write(os.path.join(multi, "meta", "samples.tsv"), 40_000, 5)

def run(*args):
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)

out = os.getcwd()
ann = "http://tracker.example.org:6969/announce"
run("mktorrent", "-l", "15", "-a", ann, "-c", "single file by mktorrent",
    "-o", f"{out}/mktorrent_single.torrent", single)
run("mktorrent", "-l", "15", "-a", ann, "-a", "udp://backup.example.net:1337/announce",
    "-w", "https://mirror.example.org/data/rnaseq",
    "-o", f"{out}/mktorrent_multi.torrent", multi)
run("mktorrent", "-l", "15", "-p", "-s", "LAB-A", "-d", "-a", ann,
    "-o", f"{out}/mktorrent_private_source.torrent", multi)
run("transmission-create", "-s", "32", "-t", ann, "-c", "multi by transmission",
    "-o", f"{out}/transmission_multi.torrent", multi)
run("transmission-create", "-p", "-t", ann,
    "-o", f"{out}/transmission_single_private.torrent", single)

def lt_make(target, name, flags):
    fs = lt.file_storage()
    lt.add_files(fs, target)
    ct = lt.create_torrent(fs, 32768, flags=flags)
    ct.add_tracker(ann)
    ct.set_creator("libtorrent " + lt.__version__)
    lt.set_piece_hashes(ct, os.path.dirname(target))
    with open(f"{out}/{name}.torrent", "wb") as f:
        f.write(lt.bencode(ct.generate()))

lt_make(single, "libtorrent_v2_single", lt.create_torrent.v2_only)
lt_make(multi, "libtorrent_v2_multi", lt.create_torrent.v2_only)
lt_make(single, "libtorrent_hybrid_single", 0)
lt_make(multi, "libtorrent_hybrid_multi", 0)

golden = {}
for fn in sorted(os.listdir(out)):
    if not fn.endswith(".torrent"):
        continue
    ti = lt.torrent_info(os.path.join(out, fn))
    ih = ti.info_hashes()
    fs = ti.files()
    data = [i for i in range(fs.num_files()) if not fs.file_flags(i) & lt.file_storage.flag_pad_file]
    golden[fn] = {
        "v1": str(ih.v1) if ih.has_v1() else "",
        "v2": ih.v2.to_bytes().hex() if ih.has_v2() else "",
        "name": ti.name(),
        "piece_length": ti.piece_length(),
        "total_size": sum(fs.file_size(i) for i in data),
        "files": [[fs.file_path(i), fs.file_size(i)] for i in data],
        "private": ti.priv(),
    }
with open("golden.json", "w") as f:
    json.dump(golden, f, indent=1, sort_keys=True)
    f.write("\n")
shutil.rmtree(tmp)
