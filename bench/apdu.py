"""cardkit's APDU round trip vs raw pyscard ``SCardTransmit`` on the same card handle.

Both go to the same mock card in a vpcd reader through real pcscd. Calls alternate
(:func:`bench.stats.interleave`) so that drift in machine load hits both sides equally; the
ratio of medians is what to compare across runs.
"""

from __future__ import annotations

import argparse
import tempfile
from contextlib import ExitStack
from pathlib import Path

from smartcard import scard

from bench.stats import emit, interleave, ratio, report
from cardkit.apdu import ApduChannel, CommandAPDU
from cardkit.transport.pcsc import PcscBackend, PcscConnection

SELECT_MF = CommandAPDU(0x00, 0xA4, 0x00, 0x0C, b"\x3f\x00")


def _mock_reader(stack: ExitStack, backend: PcscBackend) -> str:
    """Serve a mock CPS in a free vpcd slot, from a process of its own (as a real card is
    outside this process: no GIL shared between the card and the code measured)."""
    from mocks.harness import HarnessError, start_card_process

    try:
        run_dir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        card = start_card_process(backend, "cps-doctor", run_dir)
    except HarnessError as exc:
        raise SystemExit(f"{exc}; or pass --reader to use a card already inserted") from None
    stack.callback(card.stop)
    return card.reader


def run(n: int, reader: str | None) -> dict[str, object]:
    backend = PcscBackend()
    with ExitStack() as stack:
        name = reader or _mock_reader(stack, backend)
        conn = stack.enter_context(PcscConnection(name))
        channel = ApduChannel(conn)
        handle, pci = conn.raw_handle
        raw = list(SELECT_MF.to_bytes())

        def cardkit_call() -> None:
            channel.send(SELECT_MF)

        def raw_call() -> None:
            hr, response = scard.SCardTransmit(handle, pci, raw)
            assert hr == 0 and response[-2:] == [0x90, 0x00]

        samples = interleave({"cardkit": cardkit_call, "pyscard": raw_call}, n, min(50, n))
    backend.close()
    return {
        "bench": "apdu",
        "n": n,
        "reader": name,
        **report(samples),
        "ratio": ratio(samples["cardkit"], samples["pyscard"]),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench apdu", description=__doc__)
    parser.add_argument("--n", type=int, default=2000, help="APDUs per side")
    parser.add_argument("--reader", help="use the card in this reader instead of a mock")
    args = parser.parse_args(argv)
    result = run(args.n, args.reader)
    ck, pk = result["cardkit"], result["pyscard"]
    assert isinstance(ck, dict) and isinstance(pk, dict)
    print(f"APDU round trip over {result['reader']}, {args.n} SELECT MF per side")
    print(
        f"  cardkit ApduChannel.send : median {ck['median_us']:8.1f} us  p99 {ck['p99_us']:8.1f} us"
    )
    print(
        f"  pyscard SCardTransmit    : median {pk['median_us']:8.1f} us  p99 {pk['p99_us']:8.1f} us"
    )
    print(f"  ratio (cardkit / pyscard): {result['ratio']}")
    emit(result)
