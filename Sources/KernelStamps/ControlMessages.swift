#if canImport(Glibc)
import Glibc
#endif
import CKernelStamps

/// Control-buffer size per message: room for SCM_TIMESTAMPING (3 timespecs) plus
/// SCM_TIMESTAMPNS and an IP_RECVERR/sock_extended_err, with margin.
let controlBytesPerMessage = 256

/// Room for one SO_TIMESTAMPING control message carrying a 32-bit flag word: CMSG_SPACE(4).
let transmitStampRequestBytes = Int(ck_cmsg_space(MemoryLayout<UInt32>.size))

/// Writes, at `control`, the control message that asks the kernel for a software TX stamp of
/// the one datagram it is sent with (SOL_SOCKET/SO_TIMESTAMPING, flags TX_SOFTWARE; Linux
/// Documentation/networking/timestamping.rst §1.3.3). Reporting and the OPT_ID key come from
/// the socket's own SO_TIMESTAMPING setting.
func writeTransmitStampRequest(at control: UnsafeMutableRawPointer) {
    var message = msghdr()
    message.msg_control = control
    message.msg_controllen = transmitStampRequestBytes
    withUnsafeMutablePointer(to: &message) { pointer in
        guard let header = ck_cmsg_firsthdr(pointer) else { return }
        header.pointee.cmsg_level = SOL_SOCKET
        header.pointee.cmsg_type = Int32(CK_SO_TIMESTAMPING)
        header.pointee.cmsg_len = ck_cmsg_len(MemoryLayout<UInt32>.size)
        UnsafeMutableRawPointer(ck_cmsg_data(header)).storeBytes(of: UInt32(CK_SOF_TIMESTAMPING_TX_SOFTWARE), as: UInt32.self)
    }
}

/// Finds the kernel software RX stamp in a received message's control data, without
/// allocation. SCM_TIMESTAMPNS carries one timespec; SCM_TIMESTAMPING carries three, of which
/// ts[0] is the software stamp (Linux Documentation/networking/timestamping.rst §2.1).
/// Returns CLOCK_REALTIME nanoseconds, or nil when the message carried no stamp.
@inline(__always)
func receiveTimestamp(in message: UnsafeMutablePointer<msghdr>) -> Int64? {
    var cmsg: UnsafeMutablePointer<cmsghdr>? = ck_cmsg_firsthdr(message)
    while let current = cmsg {
        if current.pointee.cmsg_level == SOL_SOCKET {
            let type = current.pointee.cmsg_type
            if type == Int32(CK_SCM_TIMESTAMPNS) {
                let ts = UnsafeRawPointer(ck_cmsg_data(current)).loadUnaligned(as: timespec.self)
                return nanoseconds(ts)
            }
            if type == Int32(CK_SCM_TIMESTAMPING) {
                let stamps = UnsafeRawPointer(ck_cmsg_data(current)).loadUnaligned(as: ck_scm_timestamping.self)
                let software = nanoseconds(stamps.ts.0)
                if software != 0 { return software }
            }
        }
        cmsg = ck_cmsg_nxthdr(message, current)
    }
    return nil
}

/// Parses an error-queue message carrying a TX timestamp: SCM_TIMESTAMPING with the software
/// stamp, and IP_RECVERR/IPV6_RECVERR with a `sock_extended_err` whose origin is
/// SO_EE_ORIGIN_TIMESTAMPING and whose `ee_data` is the OPT_ID key. Returns nil for anything
/// else (e.g. an ICMP error), which the caller skips.
@inline(__always)
func transmitTimestamp(in message: UnsafeMutablePointer<msghdr>) -> TransmitTimestamp? {
    var stamp: Int64 = 0
    var key: UInt32 = 0
    var sawKey = false
    var cmsg: UnsafeMutablePointer<cmsghdr>? = ck_cmsg_firsthdr(message)
    while let current = cmsg {
        let level = current.pointee.cmsg_level
        let type = current.pointee.cmsg_type
        if level == SOL_SOCKET && type == Int32(CK_SCM_TIMESTAMPING) {
            let stamps = UnsafeRawPointer(ck_cmsg_data(current)).loadUnaligned(as: ck_scm_timestamping.self)
            stamp = nanoseconds(stamps.ts.0)
        } else if (level == Int32(CK_SOL_IP) && type == Int32(CK_IP_RECVERR))
                    || (level == Int32(CK_SOL_IPV6) && type == Int32(CK_IPV6_RECVERR)) {
            let err = UnsafeRawPointer(ck_cmsg_data(current)).loadUnaligned(as: ck_sock_extended_err.self)
            if err.ee_errno == UInt32(ENOMSG) && err.ee_origin == UInt8(CK_SO_EE_ORIGIN_TIMESTAMPING)
                && err.ee_info == UInt32(CK_SCM_TSTAMP_SND) {
                key = err.ee_data
                sawKey = true
            }
        }
        cmsg = ck_cmsg_nxthdr(message, current)
    }
    guard sawKey, stamp != 0 else { return nil }
    return TransmitTimestamp(id: key, realtimeNanoseconds: stamp)
}

@inline(__always)
func nanoseconds(_ ts: timespec) -> Int64 {
    Int64(ts.tv_sec) &* 1_000_000_000 &+ Int64(ts.tv_nsec)
}
