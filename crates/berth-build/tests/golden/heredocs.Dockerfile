FROM busybox
RUN <<EOF
echo hello
echo $HOME
EOF
RUN <<-'EOT' sh -x
	echo "no $expansion"
	EOT
RUN 3<<A 4<<"B" cat /proc/self/fd/3 /proc/self/fd/4
first
A
second
B
COPY <<conf.ini <<-data.txt /etc/app/
[x]
y=$Y
conf.ini
	tabbed
	data.txt
ONBUILD RUN <<EOF
echo later
EOF
CMD ["done"]
