# The bao agent beside intake: logs in as the Kubernetes role rehab-intake and keeps a fresh OpenBao token in the
# memory volume the service reads. It caches nothing and proxies nothing: the service talks to OpenBao itself.
pid_file = "/tmp/bao-agent.pid"
exit_after_auth = false

vault {
  address = "https://openbao.openbao.svc:8200"
  ca_cert = "/etc/rehab/openbao-ca/ca.crt"
}

auto_auth {
  method "kubernetes" {
    mount_path = "auth/kubernetes"
    config = {
      role       = "rehab-intake"
      token_path = "/var/run/secrets/openbao/serviceaccount/token"
    }
  }

  sink "file" {
    config = {
      path = "/var/run/openbao/token"
      mode = 0400
    }
  }
}
