import ArgumentParser
import Conform
import Replay
import Trace

enum BisectCheckDefaults: BackendDefaults {
    static let backend = BackendKind.kernel
    static let profile = "latest"
    static let profileKeywords: Set<String> = []
}

struct BisectCheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bisect-check",
        abstract: "One `git bisect run` step: is this kernel good or bad?",
        discussion: Help.flow("""
        Replays TRACE on this machine's kernel (--backend kernel, the default, with
        --group/--device) or the engine, and compares the outcomes with a known-good
        recording (--expect GOOD.vft), or runs one conformance rule (--rule ID).

        Exit codes, as `git bisect run` reads them: 0 good (same outcomes, or the rule
        PASSes), 1 bad (different, or FAIL), 125 skip (could not run here: no device,
        a BROK or CONF rule, bad arguments). Never 64 and never 128 or more.

        A kernel bisect with the VM lab (the step builds the kernel, boots it, and runs
        this check inside the guest; vm-lab --exit-code passes 0/1 through and turns a
        guest that did not boot into 125):
          git bisect start v6.12 v6.1
          git bisect run sh -c 'make -j2 bzImage modules && make modules_install INSTALL_MOD_PATH=/tmp/m &&
            /path/to/vfiotrace/scripts/vm-lab --exit-code --kernel arch/x86/boot/bzImage --modules /tmp/m/lib/modules/* --
            /path/to/vfiotrace/.build/release/vfiotrace bisect-check /path/to/trace.vft --expect /path/to/good.vft --group $VFIO_GROUP --group $VFIO_MDEV_GROUP'
        """)
    )

    @Argument(help: "The trace (.vft) or scenario (.vfs) to replay (not needed with --rule).", completion: .file(extensions: ["vft", "vfs"]))
    var trace: String?

    @Option(help: "A recording of the good behaviour to compare the outcomes with.", completion: .file(extensions: ["vft", "vfs"]))
    var expect: String?

    @Option(help: "Run this conformance rule instead (from corpora/rules or --corpus).")
    var rule: String?

    @Option(help: "The rule directory for --rule.", completion: .directory)
    var corpus: String?

    @OptionGroup var backend: BackendOptions<BisectCheckDefaults>

    @OptionGroup var host: TraceHostOptions

    @OptionGroup var comparison: ComparisonArguments

    func validate() throws {
        guard (rule == nil) != (expect == nil) else { throw ValidationError("give --expect GOOD.vft or --rule ID") }
        if expect != nil && trace == nil { throw ValidationError("--expect needs the TRACE to replay") }
    }

    /// Checked in `validate()`: the engine's profile is a preset.
    var profile: KernelProfile {
        if case .preset(let p) = backend.choice { return p }
        return .latest
    }

    func run() throws {
        if let rule { return try runRule(rule) }
        let trace = trace!, expect = expect!
        let events = try readAllEvents(trace)
        let good = try readAllEvents(expect)
        guard good.count == events.count else { throw Failure.trouble("\(expect) has \(good.count) events, \(trace) \(events.count)") }
        let backendObject: Backend = backend.kind == .engine
            ? BitmapEngine(profile: profile, host: try host.host(for: events).0)
            : try backend.realBackend(traceKinds: RealVFIOBackend.traceGroupKinds(events))
        let outcomes = backendObject.outcomes(of: events)
        if let step = Bisection.firstChange(good, outcomes, options: comparison.options) {
            var out = OutputBuffer()
            out.line("bad: outcomes differ from \(expect) on \(backendObject.name):")
            for l in step.reportLines(indent: "    ") { out.line(l) }
            out.flush()
            throw ExitCode(1)
        }
        printRaw("good: \(events.count) outcomes as in \(expect) on \(backendObject.name)\n", fd: 1)
    }

    func runRule(_ id: String) throws {
        let (dir, catalogue) = try loadRuleCatalogue(corpus)
        guard let r = catalogue.rules.first(where: { $0.id == id }) else { throw Failure.trouble("no rule \(id) in \(dir)") }
        let target: ConformRunner.Target = backend.kind == .engine ? .engine(profile, host: try host.given.described() ?? HostModel()) : try backend.conformTargets()[0]
        let result = ConformRunner.run(r, on: target)
        printRaw("\(result.verdict.rawValue) \(id) on \(target.name): \(result.detail)\n", fd: 1)
        switch result.verdict {
        case .pass, .warn: return
        case .fail: throw ExitCode(1)
        case .conf, .brok: throw Failure.trouble("rule \(id) is \(result.verdict.rawValue) here")
        }
    }
}
