import ArgumentParser
import Conform
import Replay
import Trace
#if canImport(Glibc)
import Glibc
#endif

/// The outcomes of one trace replayed on one backend.
func replayOutcomes(_ events: [Event], on backend: Backend) -> [Event] {
    var out: [Event] = []
    out.reserveCapacity(events.count)
    for e in events { out.append(backend.perform(e).event) }
    (backend as? RealVFIOBackend)?.close()
    return out
}

/// The first event whose outcome differs between two replays of one trace.
func firstChange(_ a: [Event], _ b: [Event], options: ComparisonOptions) -> ReplayStep? {
    var checker = OutcomeChecker(options: options, ignored: [.migrationCapHole])
    for (x, y) in zip(a, b) {
        let step = checker.check(expected: x, actual: y, sameInputs: true)
        if step.diverged { return step }
    }
    return nil
}

func describe(_ step: ReplayStep) -> [String] {
    var lines = ["    " + step.expected.inputLine]
    for d in step.differences {
        switch d {
        case .bitmap(let b): lines += b.lines().map { "        " + $0 }
        default: lines.append("        \(d)")
        }
    }
    return lines
}

struct Bisect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Find where a trace's outcomes change along an ordered list of profiles or kernels.",
        discussion: """
        The trace (or scenario) is replayed on each profile (the engine) or each kernel (the
        VM lab, real VFIO), in the order given; every point where the outcomes change from
        one to the next is printed with the first differing event, the first change marked.
        Outcomes are compared with each other, not with what the trace recorded.

        Examples:
          vfiotrace bisect corpora/pinned-scope.vfs
          vfiotrace bisect host.vft --profiles v16,5.8,5.10,5.12,latest
          vfiotrace bisect corpora/lab-probes.vfs --kernels 6.1,6.12

        Exit codes: 0 no change along the list, 1 outcomes change, 2 trouble.
        """
    )

    @Argument(help: "The trace (.vft) or scenario (.vfs).")
    var trace: String

    @Option(help: "Engine profiles in order, comma-separated (default: every preset, oldest first).")
    var profiles: String?

    @Option(help: "Real kernels in order (5.10, 6.1, 6.12, or bzImage paths), replayed in the VM lab.")
    var kernels: String?

    @OptionGroup var comparison: ComparisonArguments

    func validate() throws {
        if profiles != nil && kernels != nil { throw ValidationError("give --profiles or --kernels, not both") }
        if let profiles {
            for n in profiles.split(separator: ",") where KernelProfile.preset(named: String(n)) == nil {
                throw ValidationError("unknown profile '\(n)'; known: " + KernelProfile.presets.map(\.name).joined(separator: ", "))
            }
        }
    }

    func run() throws {
        let source = try EventSource(path: trace)
        let events = try source.readAll()
        var points: [(name: String, outcomes: [Event])] = []
        if let kernels {
            for k in kernels.split(separator: ",").map(String.init) {
                points.append((k, try kernelOutcomes(k)))
            }
        } else {
            let list = profiles.map { $0.split(separator: ",").map { KernelProfile.preset(named: String($0))! } } ?? KernelProfile.presets
            for p in list { points.append((p.name, replayOutcomes(events, on: BitmapEngine(profile: p)))) }
        }
        var out = OutputBuffer()
        var changes = 0
        var first: String? = nil
        for i in 1..<max(1, points.count) {
            guard let step = firstChange(points[i - 1].outcomes, points[i].outcomes, options: comparison.options) else {
                out.line("same  \(points[i - 1].name) -> \(points[i].name)")
                continue
            }
            changes += 1
            if first == nil { first = points[i].name }
            out.line("\(changes == 1 ? "FIRST CHANGE" : "change") \(points[i - 1].name) -> \(points[i].name) at event #\(step.expected.seq) (expected: \(points[i - 1].name), got: \(points[i].name)):")
            for l in describe(step) { out.line(l) }
        }
        out.line(changes == 0 ? "no change across \(points.map(\.name).joined(separator: ", "))"
                 : "\(changes) change point\(changes == 1 ? "" : "s") across \(points.map(\.name).joined(separator: ", ")); the first is \(first!)")
        out.flush()
        if changes > 0 { throw ExitCode(1) }
    }

    /// Replays the trace on a real kernel through the VM lab and reads back
    /// the recording.
    func kernelOutcomes(_ kernel: String) throws -> [Event] {
        guard let root = repositoryRoot() else { throw Failure.trouble("--kernels needs scripts/vm-lab (run from the vfiotrace checkout)") }
        // One directory per kernel: reading the recording back must find
        // this kernel's, not an earlier one's.
        let outDir = "/tmp/vfiotrace-bisect-\(getpid())/" + String(kernel.map { $0.isLetter || $0.isNumber || $0 == "." ? $0 : "_" })
        let absTrace = trace.hasPrefix("/") ? trace : currentDirectory() + "/" + trace
        let guest = "\(root)/.build/release/vfiotrace replay \(shellQuote(absTrace)) --backend vfio --group $VFIO_GROUP --group \"$VFIO_MDEV_GROUP\" -o $VMLAB_OUT/bisect.vft > /dev/null; test -f $VMLAB_OUT/bisect.vft"
        let kernelArg = kernel.contains("/") ? shellQuote(kernel) : kernel
        let cmd = "\(shellQuote(root))/scripts/vm-lab --kernel \(kernelArg) --out \(outDir) -- sh -c \(shellQuote(guest)) >&2"
        guard system(cmd) == 0 else { throw Failure.trouble("the VM lab could not replay \(trace) on \(kernel) (see \(outDir))") }
        guard let names = directoryEntries(outDir) else { throw Failure.trouble("\(outDir): no results") }
        for name in names {
            let path = "\(outDir)/\(name)/bisect.vft"
            if access(path, R_OK) == 0 { return try EventSource(path: path).readAll() }
        }
        throw Failure.trouble("\(outDir): the guest wrote no recording")
    }
}

struct BisectCheck: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bisect-check",
        abstract: "One `git bisect run` step: is this kernel good or bad?",
        discussion: """
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
        """
    )

    @Argument(help: "The trace (.vft) or scenario (.vfs) to replay (not needed with --rule).")
    var trace: String?

    @Option(help: "A recording of the good behaviour to compare the outcomes with.")
    var expect: String?

    @Option(help: "Run this conformance rule instead (from corpora/rules or --corpus).")
    var rule: String?

    @Option(help: "The rule directory for --rule.")
    var corpus: String?

    @Option(help: "kernel (this machine's VFIO) or engine.")
    var backend = "kernel"

    @Option(help: "engine: the profile.")
    var profile = "latest"

    @Option(name: .customLong("group"), help: ArgumentHelp("kernel: a real group to use (repeatable).", valueName: "group"))
    var groups: [String] = []

    @Option(name: .customLong("device"), help: ArgumentHelp("kernel: a PCI device whose group to use (repeatable).", valueName: "bdf"))
    var devices: [String] = []

    @OptionGroup var comparison: ComparisonArguments

    func run() throws {
        guard (rule == nil) != (expect == nil) else { throw Failure.trouble("give --expect GOOD.vft or --rule ID") }
        if let rule { return try runRule(rule) }
        guard let trace else { throw Failure.trouble("--expect needs the TRACE to replay") }
        let events = try EventSource(path: trace).readAll()
        let good = try EventSource(path: expect!).readAll()
        guard good.count == events.count else { throw Failure.trouble("\(expect!) has \(good.count) events, \(trace) \(events.count)") }
        let backendObject = try makeBackend(events)
        let outcomes = replayOutcomes(events, on: backendObject)
        if let step = firstChange(good, outcomes, options: comparison.options) {
            var out = OutputBuffer()
            out.line("bad: outcomes differ from \(expect!) on \(backendObject.name):")
            for l in describe(step) { out.line(l) }
            out.flush()
            throw ExitCode(1)
        }
        printRaw("good: \(events.count) outcomes as in \(expect!) on \(backendObject.name)\n", fd: 1)
    }

    func makeBackend(_ events: [Event]) throws -> Backend {
        if backend == "engine" {
            guard let p = KernelProfile.preset(named: profile) else { throw Failure.trouble("unknown profile '\(profile)'") }
            return BitmapEngine(profile: p)
        }
        guard backend == "kernel" else { throw Failure.trouble("unknown backend '\(backend)'") }
        guard !(groups.isEmpty && devices.isEmpty) else { throw Failure.trouble("--backend kernel needs --group or --device") }
        installExitOnSignal()
        return try makeRealVFIOBackend(groups: groups, devices: devices, traceKinds: RealVFIOBackend.traceGroupKinds(events))
    }

    func runRule(_ id: String) throws {
        let conform = try Conform.parse(corpus.map { ["--corpus", $0] } ?? [])
        let dir = try conform.corpusDirectory()
        let catalogue = try conform.loadCatalogue(dir)
        guard let r = catalogue.rules.first(where: { $0.id == id }) else { throw Failure.trouble("no rule \(id) in \(dir)") }
        let target: ConformRunner.Target
        if backend == "engine" {
            guard let p = KernelProfile.preset(named: profile) else { throw Failure.trouble("unknown profile '\(profile)'") }
            target = .engine(p)
        } else {
            target = try kernelConformTarget(groups: groups, devices: devices)
        }
        let result = ConformRunner.run(r, on: target)
        printRaw("\(result.verdict.rawValue) \(id) on \(target.name): \(result.detail)\n", fd: 1)
        switch result.verdict {
        case .pass, .warn: return
        case .fail: throw ExitCode(1)
        case .conf, .brok: throw Failure.trouble("rule \(id) is \(result.verdict.rawValue) here")
        }
    }
}

func shellQuote(_ s: String) -> String { "'" + s.split(separator: "'", omittingEmptySubsequences: false).joined(separator: "'\\''") + "'" }

func currentDirectory() -> String {
    var buf = [CChar](repeating: 0, count: 4096)
    guard getcwd(&buf, 4096) != nil else { return "." }
    return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// The vfiotrace checkout this executable was built in, or the current
/// directory when it is one (it holds scripts/vm-lab).
func repositoryRoot() -> String? {
    if access("scripts/vm-lab", X_OK) == 0 { return currentDirectory() }
    var exe = [CChar](repeating: 0, count: 4096)
    let n = readlink("/proc/self/exe", &exe, 4095)
    guard n > 0 else { return nil }
    var path = String(decoding: exe.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    for _ in 0..<5 {
        guard let slash = path.lastIndex(of: "/") else { break }
        path = String(path[..<slash])
        if access(path + "/scripts/vm-lab", X_OK) == 0 { return path }
    }
    return nil
}
