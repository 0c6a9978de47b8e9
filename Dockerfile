# A minimal image: the static exporter binary, a CA bundle (for mqtts:// to
# brokers with public certificates), a non-root user, nothing else.
# Build it with scripts/image.sh, which builds the binary first and passes
# target/image as the context (nothing is compiled or pulled here).
FROM scratch
COPY mqtt-disconnect-exporter /mqtt-disconnect-exporter
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY nsswitch.conf /etc/nsswitch.conf
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    MQTT_EXPORTER_WEB_LISTEN_ADDRESS=:9883
USER 65534:65534
EXPOSE 9883
ENTRYPOINT ["/mqtt-disconnect-exporter"]
