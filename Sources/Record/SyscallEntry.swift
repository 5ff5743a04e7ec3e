import CRecord
import Trace
#if canImport(Glibc)
import Glibc
#endif

/// Turns a syscall stopped at entry into what to record at its exit: VFIO
/// ioctls decoded by what their fd is, opens of `/dev/vfio/*`, closes of
/// VFIO fds. Requests to the vfiotrace_pin test device become the pin
/// events they cause, unless the kernel's own events are recorded.
struct SyscallEntry {
    /// The kernel's pin events are recorded (`--pins`): the test device's
    /// requests stay raw ioctls.
    let kernelPins: Bool
    /// Device fds from GET_DEVICE_FD → the group number they belong to.
    private var deviceGroup: [Int32: UInt32] = [:]
    /// Migration data fds (returned by DEVICE_FEATURE MIG_DEVICE_STATE) →
    /// what their `/proc` link named then (the driver's anon inode name):
    /// their ioctls (PRECOPY_INFO) are recorded as kind `other` while the
    /// fd still names that file. Their closes are not recorded: the replay
    /// backends know no data fds.
    private var dataFDs: [Int32: String] = [:]

    init(kernelPins: Bool) { self.kernelPins = kernelPins }

    /// What to record at the exit of syscall `sc` of thread `pid`, or nil.
    /// `closes(fd)` counts the closes of fd number `fd` the recorder has
    /// seen enter so far (any thread), `closesInFlight(fd)` those of them
    /// not yet returned: a failed call may have reached another file if a
    /// close of its fd entered before it returned and had not finished
    /// before it started.
    func decode(_ pid: pid_t, _ sc: crec_syscall, closes: @escaping (Int32) -> UInt64,
                closesInFlight: (Int32) -> UInt64) -> PendingCall? {
        let mem = TraceeMemory(pid: pid)
        func guarded(_ call: PendingCall, fd: Int32, target: String, what: String) -> PendingCall {
            Self.unlessReplaced(call, fd: fd, target: target, what: what,
                                closesAtEntry: closes(fd) &- closesInFlight(fd), closes: closes)
        }
        switch sc.nr {
        case crec_nr_ioctl:
            let fd = Int32(truncatingIfNeeded: sc.args.0)
            let request = sc.args.1 & 0xffff_ffff
            guard let target = mem.fdTarget(fd) else { return nil }
            if dataFDs[fd] == target, request >> 8 & 0xff == VFIOUAPI.type {
                let call = IoctlDecoder.raw(fd: fd, kind: .other, request: request, arg: sc.args.2, mem: mem)
                return guarded(call, fd: fd, target: target, what: "ioctl 0x\(String(request, radix: 16))")
            }
            guard let (kind, group) = TraceeMemory.vfioKind(ofTarget: target) else { return nil }
            let what = "ioctl 0x\(String(request, radix: 16))"
            if kind == .device, !kernelPins, let g = deviceGroup[fd],
               let call = IoctlDecoder.pinDevice(group: g, request: request, arg: sc.args.2, mem: mem) {
                return guarded(call, fd: fd, target: target, what: what)
            }
            let call = IoctlDecoder.entry(fd: fd, kind: kind, group: group, request: request, arg: sc.args.2, mem: mem)
            return guarded(call, fd: fd, target: target, what: what)
        case crec_nr_open, crec_nr_openat:
            let pathArg = sc.nr == crec_nr_open ? sc.args.0 : sc.args.1
            guard let path = mem.string(pathArg), path.hasPrefix("/dev/vfio/") else { return nil }
            return PendingCall { r, _ in .open(Open(path: path, result: callResult(r))) }
        case crec_nr_close:
            let fd = Int32(truncatingIfNeeded: sc.args.0)
            guard let target = mem.fdTarget(fd), TraceeMemory.vfioKind(ofTarget: target) != nil else { return nil }
            let call = PendingCall { r, _ in .close(Close(fd: fd, result: callResult(r))) }
            return guarded(call, fd: fd, target: target, what: "close")
        default:
            return nil
        }
    }

    /// Remembers which group a new device fd is in, from a recorded
    /// GET_DEVICE_FD of thread `tid`.
    mutating func note(_ body: EventBody, tid: pid_t) {
        if case .groupGetDeviceFD(let x) = body, let dev = x.result?.value,
           let (_, group) = TraceeMemory(pid: tid).vfioKind(x.fd), let group {
            deviceGroup[Int32(truncatingIfNeeded: dev)] = group
        }
        if case .rawIoctl(let x) = body, case .setState(_, _, let dataFD?)? = DeviceIoctl(x), dataFD >= 0,
           let target = TraceeMemory(pid: tid).fdTarget(dataFD) {
            dataFDs[dataFD] = target
        }
    }

    /// The fd is classified when the call stops at entry, but another
    /// thread can close it and open something else under its number
    /// before the kernel looks it up: the call then reaches the other
    /// file (ENOTTY from /dev/null) or none (EBADF). When a call fails and
    /// its fd no longer names the file it named at entry, or a close of
    /// that fd number entered meanwhile (the fd can be closed, reused and
    /// reopened on the same path before the exit is seen), the kernel may
    /// have used either file, so the call is kept as a marker, not as a
    /// VFIO event a replay would hold against VFIO. A close that enters
    /// stops its thread until the recorder resumes it, so it is counted
    /// before it can take effect. (Successful calls are not checked: a
    /// VFIO request succeeding on a file that replaced a VFIO fd is not a
    /// case seen. A `dup2` onto the fd is not seen: it does not stop.)
    static func unlessReplaced(_ call: PendingCall, fd: Int32, target: String, what: String,
                               closesAtEntry: UInt64, closes: @escaping (Int32) -> UInt64) -> PendingCall {
        PendingCall { ret, mem in
            guard ret < 0, ret >= -4095 else { return call.finish(ret, mem) }
            let now = mem.fdTarget(fd)
            let closedMeanwhile = closes(fd) != closesAtEntry
            guard now != target || closedMeanwhile else { return call.finish(ret, mem) }
            let fate = now == target ? "closed and reopened as \(target)" : now.map { "reused for \($0)" } ?? "closed"
            return .marker(Marker("\(what) on fd \(fd) -> \(ErrnoName.name(Int32(-ret))): fd \(fd) was \(fate) during the call (it was \(target) at entry); the kernel may have used either file, so the call is kept as this note"))
        }
    }
}

extension EventBody {
    /// The group of a kernel-side event (pin, unpin, dma_rw); nil for calls.
    var kernelEventGroup: UInt32? {
        switch self {
        case .pin(let x): x.group
        case .unpin(let x): x.group
        case .dmaRW(let x): x.group
        default: nil
        }
    }
}

/// The recorder's clock and its 250 ms ticker.
enum RecorderClock {
    /// CLOCK_MONOTONIC in nanoseconds: what events are stamped with (the
    /// kprobes' tracefs instance uses the same clock, `mono`).
    static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    /// Wakes `waitpid` every 250 ms (SIGALRM without SA_RESTART, so it
    /// returns EINTR) so that the writer can close a frame while the
    /// tracee is idle.
    static func startTicker() {
        var sa = sigaction()
        sa.__sigaction_handler.sa_handler = { _ in }
        sigemptyset(&sa.sa_mask)
        sa.sa_flags = 0
        sigaction(SIGALRM, &sa, nil)
        // A parent may have started us with SIGALRM blocked.
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGALRM)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
        var t = itimerval(it_interval: timeval(tv_sec: 0, tv_usec: 250_000), it_value: timeval(tv_sec: 0, tv_usec: 250_000))
        setitimer(Int32(ITIMER_REAL.rawValue), &t, nil)
    }

    static func stopTicker() {
        var t = itimerval()
        setitimer(Int32(ITIMER_REAL.rawValue), &t, nil)
    }
}
