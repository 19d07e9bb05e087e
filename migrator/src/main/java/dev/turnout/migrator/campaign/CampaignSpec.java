package dev.turnout.migrator.campaign;

import com.google.common.collect.ImmutableList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * What an operator asks a campaign to do: which servers move where, and the {@link Policy} that paces them.
 * Checked whole when made: an {@link InvalidSpecException} names the field by its path ({@code members[4].server}),
 * the value and what is wrong.
 *
 * @param name what operators call it, shown in status and logs
 * @param migration how each member's migration behaves (validation window, phase deadline, quiesce grace, ...):
 *     every member's migration is started with these options
 */
public record CampaignSpec(String name, ImmutableList<Member> members, Policy policy,
    dev.turnout.migrator.Migration.Options migration) {

  public CampaignSpec(String name, ImmutableList<Member> members, Policy policy) {
    this(name, members, policy, null);
  }

  public CampaignSpec {
    policy = policy == null ? Policy.DEFAULT : policy;
    migration = migration == null ? dev.turnout.migrator.Migration.Options.defaults() : migration;
    if (name == null || name.isBlank()) {
      throw new InvalidSpecException("name", name, "is required");
    }
    if (name.length() > 200) {
      throw new InvalidSpecException("name", name.substring(0, 40) + "...", "is longer than 200 characters");
    }
    if (members == null || members.isEmpty()) {
      throw new InvalidSpecException("members", members == null ? null : "[]", "must list at least one server");
    }
    Map<String, Integer> servers = new HashMap<>(members.size() * 2);
    for (int i = 0; i < members.size(); i++) {
      Member m = members.get(i);
      if (m == null) {
        throw new InvalidSpecException("members[" + i + "]", null, "is empty");
      }
      Integer before = servers.putIfAbsent(m.server(), i);
      if (before != null) {
        throw new InvalidSpecException("members[" + i + "].server", m.server(), "is also members[" + before
            + "].server: a server moves once");
      }
    }
    Map<String, Integer> targets = new HashMap<>(members.size() * 2);
    for (int i = 0; i < members.size(); i++) {
      Member m = members.get(i);
      if (m.target().kind() == Target.Kind.AURORA_CLUSTER) {
        continue; // one cluster per instance, named after it
      }
      String target = m.target().value();
      Integer before = targets.putIfAbsent(target, i);
      if (before != null) {
        throw new InvalidSpecException("members[" + i + "].target.value", target, "is also the target of members["
            + before + "]");
      }
      Integer source = servers.get(target);
      if (source != null) {
        throw new InvalidSpecException("members[" + i + "].target.value", target, "is members[" + source
            + "].server: a server this campaign moves cannot be a target in it");
      }
    }
    if (policy.canary().count() > members.size()) {
      throw new InvalidSpecException("policy.canary.count", policy.canary().count(), "is more than the "
          + members.size() + " member" + (members.size() == 1 ? "" : "s"));
    }
  }

  public static CampaignSpec of(String name, List<Member> members, Policy policy) {
    return new CampaignSpec(name, ImmutableList.copyOf(members), policy);
  }

  public CampaignSpec withMembers(List<Member> m) {
    return new CampaignSpec(name, ImmutableList.copyOf(m), policy, migration);
  }

  public CampaignSpec withPolicy(Policy p) {
    return new CampaignSpec(name, members, p, migration);
  }

  public CampaignSpec withMigration(dev.turnout.migrator.Migration.Options options) {
    return new CampaignSpec(name, members, policy, options);
  }
}
