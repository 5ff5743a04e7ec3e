import Trace

/// The fuzz entry point for replay (see ``TraceFuzzing``): a trace or
/// scenario, read as `replay` reads it, replayed on the bitmap engine with
/// the oldest and the newest profile and compared outcome by outcome.
/// Every outcome a trace states is untrusted: impossible ones must give a
/// divergence, never a trap.
public enum ReplayFuzzing {
    public static func replay(_ bytes: [UInt8]) {
        let file = TraceFile(bytes: bytes, name: "fuzz")
        guard let input = try? EventInput.open(file: file) else { return }
        for profile in [KernelProfile.v16, .latest] {
            // A bitmap budget a fuzzer's memory limit allows.
            var replayer = Replayer(backend: BitmapEngine(profile: profile, bitmapMemoryLimit: 256 << 20))
            var summary = ReplaySummary(options: ComparisonOptions())
            guard var events = try? input.events() else { return }
            var n = 0
            while let e = try? events.next(), n < 100_000 {
                _ = summary.add(replayer.step(e))
                n += 1
            }
        }
    }
}
