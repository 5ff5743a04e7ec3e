import ArgumentParser
import Replay
import Trace
#if canImport(Glibc)
import Glibc
#endif

/// Options shared by `replay` and `diff`: how to compare and how much to print.
struct ComparisonArguments: ParsableArguments {
    @Flag(help: "Do not count bitmap bits outside every mapping (holes, past the range end) as divergences; they are still shown.")
    var lenient = false

    @Option(help: "How many divergent events to print in full (0: only the summary).")
    var maxDivergences = 10

    var options: ComparisonOptions { ComparisonOptions(strictOutsideMappings: !lenient) }
}

/// Prints divergences as they are found and the summary at the end.
struct DivergenceReport {
    let maxShown: Int
    let options: ComparisonOptions
    var out = OutputBuffer()
    private(set) var events = 0
    private(set) var compared = 0
    private(set) var divergent = 0
    private(set) var outsideOnly = 0
    private(set) var notReplayed = 0
    private(set) var notModelled = 0
    /// Why the first event with a stated outcome could not be replayed.
    private(set) var firstUnreplayable: String?
    private(set) var hazards = 0

    init(maxShown: Int, options: ComparisonOptions) {
        self.maxShown = maxShown
        self.options = options
    }

    mutating func add(_ step: ReplayStep) {
        events += 1
        for note in step.notes {
            switch note {
            case .notReplayed(let why):
                notReplayed += 1
                if firstUnreplayable == nil && step.expected.result != nil { firstUnreplayable = "\(step.expected.inputLine): \(why)" }
                return
            case .notModelled:
                notModelled += 1
                return
            default: continue
            }
        }
        compared += 1
        if step.differences.contains(where: { if case .hazard = $0 { return true }; return false }) { hazards += 1 }
        guard !step.differences.isEmpty else { return }
        if !step.diverged { outsideOnly += 1 } else { divergent += 1 }
        guard divergent + outsideOnly <= maxShown else { return }
        out.line(step.expected.inputLine + (step.diverged ? "" : "   [outside mappings only: not counted]"))
        for d in step.differences {
            switch d {
            case .bitmap(let b): for l in b.lines() { out.line("    " + l) }
            default: out.line("    \(d)")
            }
        }
        out.flush()
    }

    mutating func finish(extra: String? = nil) {
        var s = "\(events) events, \(compared) compared, \(divergent) divergent"
        if outsideOnly > 0 { s += ", \(outsideOnly) differing only outside mappings (not counted: --lenient)" }
        if notReplayed > 0 { s += ", \(notReplayed) not replayed" }
        if notModelled > 0 { s += ", \(notModelled) not modelled (undecoded)" }
        if hazards > 0 { s += ", \(hazards) kernel hazards" }
        if let extra { s += "; " + extra }
        if divergent > maxShown { s += " (first \(maxShown) shown; --max-divergences for more)" }
        out.line(s)
        out.flush()
    }
}

struct Replay: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Replay a trace or scenario against a backend and compare every outcome.",
        discussion: """
        Each event's inputs go to the backend; its outcome (result or errno, written-back
        fields, the bitmap buffer bit for bit) is compared with the recorded one. Only the
        outcome fields a scenario states are compared. Bitmap differences are printed as
        page runs with their IOVAs, split into bits inside mappings and bits outside any
        mapping (holes, past the range end).

        Backends: `engine` (the bitmap engine, a model of vfio_iommu_type1.c; profiles
        from `vfiotrace profiles`, or `auto`, which picks one from the trace header's
        kernel release, latest when there is none) and `vfio` (this machine's kernel,
        through /dev/vfio: needs root, a device bound to vfio-pci, and --group or
        --device naming it; nothing else is opened). With --output, a vfio replay
        records the real outcomes with this kernel's release in the header.

        Examples:
          vfiotrace replay corpora/basic-tracking.vfs
          vfiotrace replay host.vft --profile 5.10
          vfiotrace replay host.vft --profile v16 --output v16.vft && vfiotrace diff host.vft v16.vft
          vfiotrace replay corpora/basic-tracking.vfs --backend vfio --device 0000:00:03.0 -o real.vft

        Exit codes: 0 every outcome matches, 1 divergence, 2 trouble, including events with
        stated outcomes that this backend could not perform (a trace group with no real group
        to bind, pins without a pinning device): such a replay is neither a match nor a
        finding. Ioctls vfiotrace does not decode are skipped and counted, not compared.
        """
    )

    @Argument(help: "The trace (.vft) or scenario (.vfs) to replay.")
    var trace: String

    @Option(help: "What to replay against: engine or vfio.")
    var backend = "engine"

    @Option(name: .customLong("group"), help: ArgumentHelp(
        "vfio: a real group to use, /dev/vfio/N (bound to the trace's groups in the order it opens them) or TRACE=/dev/vfio/N. Repeatable.",
        valueName: "group"))
    var groups: [String] = []

    @Option(name: .customLong("device"), help: ArgumentHelp("vfio: a PCI device (e.g. 0000:00:03.0) whose IOMMU group to use. Repeatable.", valueName: "bdf"))
    var devices: [String] = []

    @Option(help: "Kernel profile of the engine: a preset name or auto.")
    var profile = "auto"

    @Option(name: .shortAndLong, help: "Write the replayed events (with the backend's outcomes) as a trace.")
    var output: String?

    @OptionGroup var comparison: ComparisonArguments

    func validate() throws {
        guard backend == "engine" || backend == "vfio" else {
            throw ValidationError("unknown backend '\(backend)': use engine or vfio")
        }
        if backend == "vfio" && groups.isEmpty && devices.isEmpty {
            throw ValidationError("--backend vfio needs --group /dev/vfio/N or --device BDF: it opens only what it is told to")
        }
        if backend == "engine" && !(groups.isEmpty && devices.isEmpty) {
            throw ValidationError("--group and --device are for --backend vfio")
        }
        guard profile == "auto" || KernelProfile.preset(named: profile) != nil else {
            throw ValidationError("unknown profile '\(profile)'; known: auto, " + KernelProfile.presets.map(\.name).joined(separator: ", "))
        }
        guard comparison.maxDivergences >= 0 else { throw ValidationError("--max-divergences must be 0 or more") }
    }

    func run() throws {
        let source = try EventSource(path: trace)
        let backendObject: Backend
        let why: String
        var header = source.header
        if backend == "vfio" {
            let real = try makeRealBackend(traceKinds: try groupKinds(source))
            backendObject = real
            why = "real kernel \(real.kernelRelease)"
            header.kernelRelease = real.kernelRelease
            var name = [CChar](repeating: 0, count: 256)
            gethostname(&name, 255)
            header.host = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            installExitOnSignal()
        } else {
            let (chosen, reason) = resolveProfile(profile, header: source.header)
            backendObject = BitmapEngine(profile: chosen)
            why = reason
        }
        var replayer = Replayer(backend: backendObject, options: comparison.options)
        var report = DivergenceReport(maxShown: comparison.maxDivergences, options: comparison.options)
        report.out.line("replaying \(trace) on \(backendObject.name) (\(why))")
        var writer: TraceWriter? = nil
        if let output {
            var h = header
            h.tool = toolVersion
            h.captureMode = "replay:\(backendObject.name)"
            do { writer = try TraceWriter(path: output, header: h) } catch { throw Failure.trouble("\(output): \(error)") }
        }
        var progress = Progress(label: "replay", total: nil)
        try source.forEach { e in
            let step = replayer.step(e)
            report.add(step)
            progress.update(UInt64(report.events))
            if let w = writer {
                do { try w.append(step.actual) } catch { throw Failure.trouble("\(output!): \(error)") }
            }
        }
        progress.finish()
        if let w = writer {
            do { try w.close() } catch { throw Failure.trouble("\(output!): \(error)") }
        }
        report.finish()
        // Outcomes the trace states but this backend could not produce make
        // the comparison invalid (later divergences may only follow from
        // them): trouble, not a finding and not a match.
        if let why = report.firstUnreplayable {
            throw Failure.trouble("some stated outcomes could not be checked on \(backendObject.name): \(why)")
        }
        if report.divergent > 0 { throw ExitCode(1) }
    }
}

extension Replay {
    /// The real-VFIO backend for the named groups and devices.
    /// The kind each trace group is attached as (emulated or IOMMU-backed),
    /// from the trace's own opens and SET_CONTAINERs.
    func groupKinds(_ source: EventSource) throws -> [UInt32: GroupKind] {
        var events: [Event] = []
        try source.forEach { e in
            switch e.body {
            case .open, .groupSetContainer: events.append(e)
            default: break
            }
        }
        return RealVFIOBackend.traceGroupKinds(events)
    }

    func makeRealBackend(traceKinds: [UInt32: GroupKind]) throws -> RealVFIOBackend {
        try makeRealVFIOBackend(groups: groups, devices: devices, traceKinds: traceKinds)
    }
}

/// The real-VFIO backend for `--group` (`/dev/vfio/N` or `TRACE=/dev/vfio/N`)
/// and `--device` (a PCI address) options, checking that each node can be
/// opened before anything runs.
func makeRealVFIOBackend(groups: [String], devices: [String], traceKinds: [UInt32: GroupKind]) throws -> RealVFIOBackend {
    var nodes: [String] = []
    var bindings: [UInt32: String] = [:]
    // An empty value ($VFIO_MDEV_GROUP in a guest without the test device)
    // names nothing.
    for g in groups where !g.isEmpty {
        if let eq = g.firstIndex(of: "="), let n = UInt32(g[..<eq]) {
            bindings[n] = String(g[g.index(after: eq)...])
        } else {
            nodes.append(g)
        }
    }
    for d in devices {
        guard let node = RealVFIOBackend.groupNode(ofPCIDevice: d) else {
            throw Failure.trouble("--device \(d): no such PCI device with an IOMMU group (is the IOMMU on?)")
        }
        nodes.append(node)
    }
    for node in nodes + bindings.values where access(node, R_OK | W_OK) != 0 {
        throw Failure.trouble("\(node): \(String(cString: strerror(errno))) (is the device bound to vfio-pci, and are you root?)")
    }
    return RealVFIOBackend(groups: nodes, bindings: bindings, traceKinds: traceKinds)
}

/// Ends the process on SIGINT/SIGTERM: the kernel then closes every fd and
/// drops every mapping this replay made.
func installExitOnSignal() {
    signal(SIGINT) { _ in _exit(130) }
    signal(SIGTERM) { _ in _exit(143) }
}

/// The profile a `--profile` value names, and why it was chosen.
func resolveProfile(_ name: String, header: TraceHeader) -> (KernelProfile, String) {
    if name != "auto" { return (KernelProfile.preset(named: name)!, "profile \(name)") }
    if header.kernelRelease.isEmpty { return (.latest, "no kernel release in the header: latest") }
    if let p = KernelProfile.forKernelRelease(header.kernelRelease) {
        return (p, "auto: kernel \(header.kernelRelease)")
    }
    return (.latest, "auto: kernel \(header.kernelRelease) not recognised, using latest")
}

struct Diff: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare the outcomes of two traces event by event.",
        discussion: """
        For the same workload recorded on two kernels, or a recording against a replay's
        --output. Events are paired by position; where the calls themselves differ the
        workloads have drifted apart and that is reported. Outcome fields the first trace
        does not state are not compared. The migration capability's bytes 12..15 are
        compared only when both kernels zero them (6.6+).

        Examples:
          vfiotrace diff recorded-6.1.vft recorded-6.12.vft
          vfiotrace replay host.vft --profile 5.8 -o r.vft; vfiotrace diff host.vft r.vft

        Exit codes: 0 same, 1 divergent, 2 trouble.
        """
    )

    @Argument(help: "The expected trace or scenario.")
    var a: String

    @Argument(help: "The trace or scenario compared with it.")
    var b: String

    @OptionGroup var comparison: ComparisonArguments

    func run() throws {
        let sa = try EventSource(path: a)
        let sb = try EventSource(path: b)
        let second = try sb.readAll()
        var ignored: Set<OutcomeField> = []
        for h in [sa.header, sb.header] {
            if KernelProfile.forKernelRelease(h.kernelRelease)?.migrationCapHoleZeroed != true { ignored.insert(.migrationCapHole) }
        }
        var checker = OutcomeChecker(options: comparison.options, ignored: ignored)
        var report = DivergenceReport(maxShown: comparison.maxDivergences, options: comparison.options)
        var i = 0
        try sa.forEach { e in
            if i < second.count { report.add(checker.check(expected: e, actual: second[i])) }
            i += 1
        }
        var extra: String? = nil
        if i != second.count {
            extra = i < second.count ? "\(b) has \(second.count - i) more events" : "\(b) ends \(i - second.count) events early"
        }
        report.finish(extra: extra)
        if report.divergent > 0 || extra != nil { throw ExitCode(1) }
    }
}

struct Profiles: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the engine's kernel profiles, show one, or compare two.",
        discussion: """
        A profile is a set of named switches, one per kernel behaviour that changed
        between versions (vfio-semantics §3 and §5).

        Examples:
          vfiotrace profiles
          vfiotrace profiles --show 5.8
          vfiotrace profiles --compare 5.8 5.12
        """
    )

    @Option(help: "Print every switch of this profile.")
    var show: String?

    @Option(parsing: .upToNextOption, help: "Print the switches that differ between two profiles.")
    var compare: [String] = []

    func validate() throws {
        for n in compare + (show.map { [$0] } ?? []) where KernelProfile.preset(named: n) == nil {
            throw ValidationError("unknown profile '\(n)'; known: " + KernelProfile.presets.map(\.name).joined(separator: ", "))
        }
        if !compare.isEmpty && compare.count != 2 { throw ValidationError("--compare takes two profile names") }
    }

    func run() throws {
        var out = OutputBuffer()
        if let show, let p = KernelProfile.preset(named: show) {
            out.line("\(p.name): \(p.summary)")
            for s in p.switches { out.line("  \(s.name) = \(s.value)") }
        } else if compare.count == 2 {
            let a = KernelProfile.preset(named: compare[0])!, b = KernelProfile.preset(named: compare[1])!
            let diffs = zip(a.switches, b.switches).filter { $0.0.value != $0.1.value }
            if diffs.isEmpty { out.line("\(a.name) and \(b.name) behave the same") }
            for (x, y) in diffs { out.line("  \(x.name): \(a.name) \(x.value), \(b.name) \(y.value)") }
        } else {
            for p in KernelProfile.presets { out.line(p.name + String(repeating: " ", count: max(1, 8 - p.name.count)) + p.summary) }
        }
        out.flush()
    }
}
