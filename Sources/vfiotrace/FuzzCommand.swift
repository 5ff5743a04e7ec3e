import ArgumentParser
import Conform
import Differential
import Replay
import Trace
#if canImport(Glibc)
import Glibc
#endif

enum FuzzDefaults: BackendDefaults {
    static let backend = BackendKind.engine
    static let profile = "auto"
    static let profileKeywords: Set<String> = ["auto"]
}

struct FuzzCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fuzz",
        abstract: "Differential fuzzing: random event streams on a reference and the engine, compared; divergences shrunk.",
        discussion: Help.flow("""
        Generates seeded, reproducible streams of mostly-valid events over the surface
        the engine models (container and group life cycle, MAP/UNMAP, DIRTY_PAGES with
        boundary values and odd buffers, pins and dma_rw through the test device), runs
        each on the reference, and replays the reference's outcomes on the candidate
        engine, event by event and bit for bit. The first stream of each kind of
        divergence (call and fields) is shrunk, every candidate re-run on both sides,
        to a small stream that still diverges the same way; between two engine
        profiles the switch that explains it is named. --save DIR writes each as a
        scenario whose stated outcomes are the reference's.

        Reference: --against PROFILE (the engine under another profile), or --backend
        kernel with --group/--device (this machine's VFIO; emulated groups need the
        vfiotrace_pin test device). Candidate: --profile (auto: the profile for the
        kernel's release, or latest against a profile).

        Examples:
          vfiotrace fuzz --against 5.10 --profile latest --streams 200
          vfiotrace fuzz --backend kernel --group /dev/vfio/12 --group /dev/vfio/20 \\
            --streams 100 --save found/
          vfiotrace fuzz --against 5.8 --shard 3/8 --streams 10000 --seed 1000

        Exit codes: 0 no divergence, or every one explained by a profile switch; 1 an
        unexplained divergence; 2 trouble (bad arguments, a backend that cannot run).
        """)
    )

    @OptionGroup var backend: BackendOptions<FuzzDefaults>

    @OptionGroup var host: HostOption

    @OptionGroup var progressOptions: ProgressOptions

    @Option(help: ArgumentHelp("engine: the reference profile the candidate (--profile) is compared against.", valueName: "profile"))
    var against: Named<KernelProfile>?

    @Option(parsing: .unconditional, help: "The first stream's seed; stream k uses seed + k.")
    var seed: UInt64 = 1

    @Option(parsing: .unconditional, help: "How many streams.")
    var streams = 100

    @Option(parsing: .unconditional, help: "Events per stream.")
    var events = 200

    @Option(help: ArgumentHelp("Relative weights of the kinds of step, e.g. map=5,pin=0 (lifecycle, map, unmap, dirty, pin).", valueName: "k=n,..."))
    var weights: String?

    @Option(help: ArgumentHelp("Run only shard I of N (1-based): streams k with k mod N = I-1.", valueName: "I/N"))
    var shard: Shard?

    @Flag(help: "Leave the IOMMU-backed group out of the streams (a host without one).")
    var noIommuGroup = false

    @Option(parsing: .unconditional, help: "At most this many re-runs while shrinking one divergence.")
    var shrinkBudget = 3000

    @Option(help: ArgumentHelp("Write each shrunk divergence as a scenario into this directory.", valueName: "dir"), completion: .directory)
    var save: String?

    @Option(help: ArgumentHelp("Only write the generated streams, as scenarios without outcomes (DIR/stream-SEED.vfs), and run nothing.", valueName: "dir"),
            completion: .directory)
    var emit: String?

    func validate() throws {
        guard (1...10_000_000).contains(streams) else { throw ValidationError("--streams \(streams): give 1 to 10000000") }
        guard (8...100_000).contains(events) else { throw ValidationError("--events \(events): give 8 to 100000") }
        guard shrinkBudget >= 0 else { throw ValidationError("--shrink-budget must be 0 or more") }
        if let against { _ = try against.checked() }
        if backend.kind == .kernel && against != nil { throw ValidationError("--against is a profile for --backend engine; with --backend kernel the kernel is the reference") }
        if backend.kind == .engine && against == nil { throw ValidationError("give the reference: --against PROFILE, or --backend kernel --group ...") }
    }

    func run() throws {
        var config = FuzzCampaign.Configuration()
        config.firstSeed = seed
        config.streams = streams
        config.generator.events = events
        config.generator.iommuBacked = !noIommuGroup
        config.shrinkBudget = shrinkBudget
        if let weights {
            do { config.generator.weights = try FuzzWeights(parsing: weights) } catch { throw ValidationError(error.description) }
        }
        if let shard { config.shard = (shard.index, shard.count) }
        let reference: ConformRunner.Target
        let candidate: ConformRunner.Target
        var release: String? = nil
        let described = try host.described()
        let model = described ?? HostModel()
        if backend.kind == .kernel {
            reference = try backend.conformTargets()[0]
            release = String(reference.name.dropFirst("vfio:".count))
            // Against a kernel the engine runs on that machine's host (what
            // its IOMMU answered a probe container), unless --host says.
            let machine = described ?? reference.ruleHost
            if case .preset(let p) = backend.choice { candidate = .engine(p, host: machine) } else { candidate = .engine(reference.profile, host: machine) }
        } else {
            let ref = try against!.checked()
            reference = .engine(ref, host: model)
            if case .preset(let p) = backend.choice { candidate = .engine(p, host: model) } else { candidate = .engine(.latest, host: model) }
            release = nil
        }
        if let save { try ensureDirectory(save) }
        let campaign = FuzzCampaign(configuration: config, run: DifferentialRun(reference: reference, candidate: candidate))
        if let emit {
            try ensureDirectory(emit)
            for seed in campaign.seeds {
                var g = StreamGenerator(seed: seed, configuration: config.generator)
                var printer = TextPrinter()
                let lines = ["# vfiotrace fuzz stream, seed \(seed)", "!mode scenario"] + g.stream().map { printer.line(for: $0) }
                try writeTextFile("\(emit)/stream-\(seed).vfs", lines.joined(separator: "\n") + "\n")
            }
            printRaw("fuzz: \(campaign.seeds.count) streams written to \(emit)\n", fd: 1)
            return
        }
        let total = campaign.seeds.count
        let start = monotonicNanoseconds()
        var progress = progressOptions.meter("fuzz \(reference.name) vs \(candidate.name)", unit: "streams", total: UInt64(total))
        let report: FuzzCampaign.Report
        do {
            report = try campaign.execute { n, _ in progress.update(UInt64(n)) }
        } catch {
            progress.finish()
            throw Failure.trouble("fuzz: \(error)")
        }
        progress.finish()
        let tenths = (monotonicNanoseconds() - start) / 100_000_000
        var out = OutputBuffer()
        out.line("fuzz: reference \(reference.name), candidate \(candidate.name)")
        out.line("\(report.streams) streams, \(report.events) events in \(tenths / 10).\(tenths % 10) s; \(report.divergentStreams) divergent, \(report.findings.count) kinds of divergence (\(report.unexplained) unexplained)")
        if report.unreplayable > 0 { out.line("\(report.unreplayable) streams compared only up to an event the reference could not run; first: \(report.firstUnreplayable ?? "")") }
        for (k, f) in report.findings.enumerated() {
            out.line("")
            out.line("[\(k + 1)] \(f.signature): \(f.streams) stream\(f.streams == 1 ? "" : "s"), first seed \(f.seed); shrunk from \(f.originalLength) to \(f.events.count) events")
            out.line("    event #\(f.divergence.index) of the shrunk stream, as the reference answers it: \(f.divergence.event)")
            for d in f.divergence.differences { out.line("      \(d)") }
            out.line("    " + (f.explainedBy.map { "explained by the switch \($0)" } ?? "unexplained"))
            if let save {
                let path = "\(save)/fuzz-\(f.seed)-\(k + 1).vfs"
                try writeTextFile(path, campaign.scenario(f, kernelRelease: release))
                out.line("    saved: \(path)")
            }
        }
        out.flush()
        if report.unexplained > 0 { throw ExitCode(1) }
    }
}

/// Creates a directory (and its parents) unless it is there.
func ensureDirectory(_ path: String) throws {
    var built = path.hasPrefix("/") ? "" : "."
    for part in path.split(separator: "/") {
        built += "/" + part
        if mkdir(built, 0o755) != 0 && errno != EEXIST { throw Failure.trouble("\(built): cannot create: \(Posix.describe(errno))") }
    }
}
