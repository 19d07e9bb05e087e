package dev.turnout.migrator.platform.aws;

import java.util.List;

/**
 * A VPC security group as EC2's DescribeSecurityGroups describes it, with the fields the fence check reads: the
 * accessors are named as the SDK's model names them.
 *
 * @param ipPermissions its inbound rules
 */
record SecurityGroup(String groupId, String vpcId, List<IpPermission> ipPermissions) {

  /** One inbound rule: the protocol ({@code -1} for all), its ports (absent for all) and the IPv4 ranges it admits. */
  record IpPermission(String ipProtocol, Integer fromPort, Integer toPort, List<IpRange> ipRanges) {}

  record IpRange(String cidrIp) {}
}
